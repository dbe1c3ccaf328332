import { UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { tildify } from '../../paths.js';
import type { Context } from '../../context.js';
import type { RotationResult } from '../../rotation/run.js';
import type { EventSource } from '../../store/store.js';
import type { Values } from '../commands.js';
import { err, out, printJson } from '../output.js';
import { withContext } from '../session.js';

export async function run(values: Values): Promise<number> {
  const fp = typeof values.fingerprint === 'string' ? values.fingerprint : undefined;
  if (fp !== undefined && !isFingerprint(fp)) throw new UsageError(`--fingerprint takes 12 hex characters as "status" shows, not "${fp}".`);
  return withContext(values, async (ctx) => {
    const { findTokens, recordScan, inspectTokens } = await import('../../scan.js');
    const { ageDays } = await import('../../rotation/policy.js');
    let targets: string[];
    if (fp) targets = [fp];
    else {
      const scan = await findTokens(ctx);
      if (!values['dry-run']) {
        recordScan(ctx, scan);
        // Age decides --if-due; ask the API for tokens we have never checked.
        const unknown = [...scan.tokens].filter(([k]) => !ctx.store.getToken(k)?.lastCheckedAt);
        if (values['if-due'] && unknown.length) await inspectTokens(ctx, unknown.map(([k, t]) => [k, t.secret] as [string, typeof t.secret]));
      }
      const now = ctx.now();
      targets = [...scan.tokens.keys()].filter((k) => {
        const row = ctx.store.getToken(k);
        if (row && row.state !== 'active') return false; // retired (a stale copy) or invalid (needs set-token)
        if (!values['if-due']) return true;
        return row !== null && ageDays(row, now) >= ctx.settings.warnAfterDays;
      });
      for (const k of scan.tokens.keys()) {
        if (ctx.store.getToken(k)?.state === 'invalid') err(`warning: token ${k} is invalid; regenerate it in the Certorix web UI, then pipe it to "mcp-token-rotator set-token --fingerprint ${k}".`);
      }
    }
    return rotateAndReport(ctx, values, targets, 'manual');
  });
}

export async function rotateAndReport(ctx: Context, values: Values, targets: string[], source: EventSource): Promise<number> {
  const { rotateTokens } = await import('../../rotation/run.js');
  const dryRun = values['dry-run'] === true;
  if (!targets.length) {
    if (values.json) printJson({ rotations: [] });
    else out(values['if-due'] ? 'No token is due; nothing to rotate.' : 'No tracked token to rotate. Run "mcp-token-rotator scan" first.');
    return 0;
  }
  const results = await rotateTokens(ctx, targets, { source, dryRun, onProgress: (m) => err(m) });
  report(ctx, results, values.json === true, dryRun);
  return results.every((r) => r.status === 'rotated' || r.status === 'planned') ? 0 : 2;
}

export function report(ctx: Context, results: RotationResult[], json: boolean, dryRun: boolean): void {
  if (json) {
    printJson({
      dryRun,
      rotations: results.map((r) => ({
        fingerprint: r.fingerprint,
        newFingerprint: r.newFingerprint,
        status: r.status,
        files: r.files,
        restart: r.restart,
        ...(r.error ? { error: r.error.toJSON() } : {}),
        ...(r.hooks ? { hooks: r.hooks } : {}),
      })),
    });
  }
  const home = ctx.pathEnv.home;
  const say = json ? err : out;
  for (const r of results) {
    if (r.status === 'planned') {
      say(`Would rotate token ${r.fingerprint} and rewrite ${r.files.length} file(s):`);
      for (const f of r.files) say(`  ${tildify(f.path, home)}  (${f.client})`);
    } else if (r.status === 'rotated') {
      say(`Rotated token ${r.fingerprint} -> ${r.newFingerprint}; rewrote ${r.files.length} file(s):`);
      for (const f of r.files) say(`  ${tildify(f.path, home)}  (${f.client})`);
      if (r.error) say(`  warning: ${r.error.describe()}`);
      if (r.restart.length) {
        say('  To pick up the new token:');
        for (const h of r.restart) say(`    - ${h}`);
      }
      for (const h of r.hooks ?? []) if (!h.ok) say(`  warning: post-rotate hook "${h.command}" failed: ${h.error ?? h.exitCode}`);
    } else {
      err(`error: ${r.error?.describe() ?? `rotation of ${r.fingerprint} did not finish`}`);
    }
  }
  if (dryRun) say('Dry run: nothing was called and nothing was written.');
}
