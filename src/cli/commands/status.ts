import { buildBrokenConfigs, buildStatus, buildStillAlive, buildUnfinished, trackedConfigsChanged, type StatusToken } from '../../status.js';
import { statusExitCode } from '../../rotation/policy.js';
import { tildify } from '../../paths.js';
import type { Values } from '../commands.js';
import { err, out, outStyled, printJson } from '../output.js';
import { EXIT, RotatorError, UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { withContext } from '../session.js';
import { renderStatusTable } from '../status-view.js';
import { paint, terminalStyle, type Style } from '../style.js';
import { termSafe } from '../../terminal.js';
import { badFingerprintMessage } from '../argv-safety.js';
import { providerModule } from '../../providers/index.js';

export function renderTokens(tokens: StatusToken[], home: string, style: Style = { colour: false, width: 80 }, verbose = false): string {
  if (!tokens.length) return 'No token found in any MCP client config. Run "mcp-token-rotator scan" after adding one.';
  return renderStatusTable(tokens, home, style, verbose);
}

export function unknownAgeLine(n: number): string {
  return `${n} token(s) of unknown age (?): the API has not told their creation date yet. Run "mcp-token-rotator scan" (asks the API now), or start the daemon (it asks at start and keeps asking).`;
}

export async function run(values: Values): Promise<number> {
  const forget = typeof values.forget === 'string' ? values.forget : undefined;
  if (forget !== undefined && !isFingerprint(forget)) throw new UsageError(badFingerprintMessage('--forget', forget));
  // Offline and never blocking (contract, CLI manners): no recovery here, which may call the
  // API; an unfinished rotation is shown with the command that finishes it instead.
  return withContext(
    values,
    async (ctx) => {
      if (forget !== undefined) {
        // Only the user knows it was revoked in the web UI: this tool no longer has its value to ask.
        if (!ctx.store.listStillAlive().some((t) => t.fingerprint === forget)) {
          throw new RotatorError('E_TOKEN_UNKNOWN', `Token ${forget} is not listed as replaced but still alive.`, { hint: 'Run "mcp-token-rotator status" to see the list.' });
        }
        ctx.store.transaction(() => {
          ctx.store.markStillAlive(forget, null);
          ctx.store.addEvent({ at: ctx.nowIso(), type: 'still-alive-forgotten', fingerprint: forget, newFingerprint: null, source: 'manual', files: [], detail: 'the user said it is revoked (or kept on purpose)' });
        });
        err(`Token ${forget} is no longer listed as still alive.`);
      }
      // First run (nothing recorded), or a tracked config changed since it was scanned: read
      // the files again (offline). Not while a rotation is open: it is rewriting them.
      const firstRun = ctx.store.getMeta('lastScanAt') === null;
      if (firstRun || (ctx.journal.open().length === 0 && (await trackedConfigsChanged(ctx)))) {
        const { findTokens, recordScan } = await import('../../scan.js');
        recordScan(ctx, await findTokens(ctx));
      }
      const tokens = buildStatus(ctx);
      const stillAlive = buildStillAlive(ctx);
      const unfinished = buildUnfinished(ctx);
      const broken = buildBrokenConfigs(ctx);
      // Converted entries that cannot work right now (endpoint down, wrapper gone): exit 2.
      const broker = await (await import('../../broker/health.js')).brokerHealth(ctx);
      const home = ctx.pathEnv.home;
      if (values.json) printJson({ tokens, replacedStillAlive: stillAlive, unfinishedRotations: unfinished, brokenConfigs: broken, brokerProblems: broker });
      else {
        const style = terminalStyle(process.stdout);
        outStyled(renderTokens(tokens, home, style, values.verbose === true));
        const due = tokens.filter((t) => t.state === 'due');
        if (due.length) out(`\n${due.length} token(s) due (>= ${ctx.settings.warnAfterDays} days old, or expiring within ${ctx.settings.warnBeforeExpiryDays} days): run "mcp-token-rotator rotate --if-due".`);
        const bad = tokens.filter((t) => t.state === 'invalid');
        if (bad.length && bad.every((t) => t.provider === 'certorix')) out(`\n${bad.length} token(s) invalid: regenerate in the Certorix web UI (MCP / API page), then pipe the new token to "mcp-token-rotator set-token".`);
        else for (const t of bad) out(`\nToken ${t.fingerprint} (${t.provider}) is invalid: make a new one at ${ctx.tokenPageFor(t.fingerprint)}, then pipe it to "mcp-token-rotator set-token --fingerprint ${t.fingerprint}".`);
        for (const u of unfinished) {
          const what =
            u.newFingerprint === null
              ? 'the regenerate call has not been answered yet (the old token may already be dead)'
              : `Certorix issued ${u.newFingerprint} (the old token is dead); ${u.pendingFiles.length} config(s) still hold the old one`;
          outStyled(`\n${paint(style, 'red', 'Unfinished rotation')} of token ${u.fingerprint}: ${what}${u.lastError ? `; last error: ${termSafe(u.lastError)}` : ''}.`);
          for (const f of u.pendingFiles) out(`  ${tildify(f, home)}`);
          out(`  Finish it: ${u.finishWith}`);
        }
        for (const b of broken) {
          outStyled(`\n${paint(style, 'red', 'Cannot parse')} ${termSafe(tildify(b.path, home))} (${termSafe(b.client)}), which held token ${b.fingerprints.join(', ')}: ${termSafe(b.error)}`);
          out('  Fix the file (its other entries are untouched until it parses), then run "mcp-token-rotator scan".');
        }
        for (const t of stillAlive) {
          out(`\nToken ${t.fingerprint} was replaced${t.replacedBy ? ` by ${t.replacedBy}` : ''} but still worked at ${t.aliveAt}: revoke it in ${ctx.tokenPageFor(t.fingerprint)} if it should stop working, then run "mcp-token-rotator status --forget ${t.fingerprint}".`);
        }
        if (!values.verbose && tokens.some((t) => t.locations.length)) out('\nRun "mcp-token-rotator status --verbose" to list every file.');
      }
      // Only where the provider tells creation dates at all (GitHub and Cloudflare never do).
      const unknown = tokens.filter((t) => t.ageDays === null && t.state !== 'invalid' && (providerModule(t.provider)?.tellsCreationDate ?? true)).length;
      if (unknown) (values.json ? err : out)(`${values.json ? '' : '\n'}${unknownAgeLine(unknown)}`);
      for (const p of broker) (values.json ? err : out)(`${values.json ? '' : '\n'}${p.message}\n  -> ${p.fix}`);
      const code = statusExitCode(tokens.map((t) => t.state));
      return unfinished.length || broken.length || broker.length ? EXIT.failure : code;
    },
    { recover: false },
  );
}
