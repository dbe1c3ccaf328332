import { UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { tildify } from '../../paths.js';
import { termSafe } from '../../terminal.js';
import type { RotateResponse } from '../../ipc/protocol.js';
import type { Values } from '../commands.js';
import { err, out, printJson } from '../output.js';
import { withContext } from '../session.js';
import { mutate } from '../mutate.js';

export async function run(values: Values): Promise<number> {
  const fp = typeof values.fingerprint === 'string' ? values.fingerprint : undefined;
  if (fp !== undefined && !isFingerprint(fp)) throw new UsageError(`--fingerprint takes 12 hex characters as "status" shows, not "${fp}".`);
  const params = { ...(fp ? { fingerprints: [fp] } : {}), ...(values['if-due'] ? { ifDue: true } : {}) };
  const { rotateOp } = await import('../../operations.js');
  if (values['dry-run']) {
    // A dry run writes nothing, so it never needs the daemon.
    return withContext(values, async (ctx) => finish(values, ctx.pathEnv.home, await rotateOp(ctx, { ...params, dryRun: true }), true), { recover: false });
  }
  const { ctx, res } = await mutate(values, { method: 'rotate', params }, (c) => rotateOp(c, { ...params, source: 'manual' }));
  return finish(values, ctx.pathEnv.home, res, false);
}

export function finish(values: Values, home: string, res: RotateResponse, dryRun: boolean, emptyMessage?: string): number {
  for (const w of res.warnings) err(`warning: ${w}`);
  // Notices are not failures: the user must know them, nothing more.
  for (const n of res.notices ?? []) err(`note: ${n}`);
  // Warnings name tokens that could not be rotated (invalid ones need the user): not a success.
  const skipped = res.warnings.length > 0;
  if (!res.rotations.length) {
    if (values.json) printJson({ dryRun, rotations: [], ...(res.manual?.length ? { manual: res.manual } : {}) });
    else if (!skipped && !res.manual?.length) out(emptyMessage ?? (values['if-due'] ? 'No token is due; nothing to rotate.' : 'No tracked token to rotate. Run "mcp-token-rotator scan" first.'));
    return skipped ? 2 : 0;
  }
  report(res, values.json === true, dryRun, home);
  return !skipped && res.rotations.every((r) => r.status === 'rotated' || r.status === 'planned') ? 0 : 2;
}

export function report(res: RotateResponse, json: boolean, dryRun: boolean, home: string): void {
  if (json) printJson({ dryRun, rotations: res.rotations, ...(res.notices?.length ? { notices: res.notices } : {}), ...(res.manual?.length ? { manual: res.manual } : {}) });
  const say = json ? err : out;
  for (const r of res.rotations) {
    if (r.status === 'planned') {
      // No file: the token lives only in broker slots (the store and the exec wrappers follow it).
      say(r.files.length ? `Would rotate token ${r.fingerprint} and rewrite ${r.files.length} file(s):` : `Would rotate token ${r.fingerprint} (broker mode: no config holds it; the token store gets the new one).`);
      for (const f of r.files) say(`  ${termSafe(tildify(f.path, home))}  (${f.client})`);
    } else if (r.status === 'rotated') {
      say(r.files.length ? `Rotated token ${r.fingerprint} -> ${r.newFingerprint}; rewrote ${r.files.length} file(s):` : `Rotated token ${r.fingerprint} -> ${r.newFingerprint} (broker mode: no config holds it; the token store and the running servers have the new one).`);
      for (const f of r.files) say(`  ${termSafe(tildify(f.path, home))}  (${f.client})`);
      if (r.error) say(`  warning: ${r.error.message}${r.error.hint ? `\n    -> ${r.error.hint}` : ''}`);
      for (const w of r.warnings ?? []) err(`  warning: ${w}`);
      if (r.restart.length) {
        say('  To pick up the new token:');
        for (const h of r.restart) say(`    - ${h}`);
      }
      for (const h of r.hooks ?? []) if (!h.ok) say(`  warning: post-rotate hook "${h.command}" failed: ${h.error ?? h.exitCode}`);
    } else {
      err(`error: ${r.error ? `${r.error.message}${r.error.hint ? `\n  -> ${r.error.hint}` : ''}` : `rotation of ${r.fingerprint} did not finish`}`);
    }
  }
  if (dryRun) say('Dry run: nothing was called and nothing was written.');
}
