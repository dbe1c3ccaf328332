import { buildStatus, buildStillAlive, type StatusToken } from '../../status.js';
import { statusExitCode } from '../../rotation/policy.js';
import { tildify } from '../../paths.js';
import type { Values } from '../commands.js';
import { err, out, printJson, table } from '../output.js';
import { EXIT, RotatorError, UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { withContext } from '../session.js';
import { providerModule } from '../../providers/index.js';

export function renderTokens(tokens: StatusToken[], home: string): string {
  if (!tokens.length) return 'No token found in any MCP client config. Run "mcp-token-rotator scan" after adding one.';
  // The provider and expiry columns appear once a token has them: a Certorix-only table stays as it was.
  const showProvider = tokens.some((t) => t.provider !== 'certorix');
  const showExpiry = tokens.some((t) => t.expiresAt !== null);
  const rows = tokens.map((t) => [
    t.fingerprint,
    ...(showProvider ? [t.provider] : []),
    t.role ?? '?',
    t.ageDays === null ? '?' : `${t.ageDays}d`,
    ...(showExpiry ? [t.expiresAt === null ? '-' : t.expiresAt.slice(0, 10)] : []),
    t.state,
    t.locations.map((l) => `${tildify(l.path, home)} (${l.client})`).join(', ') || '-',
  ]);
  return table(['FINGERPRINT', ...(showProvider ? ['PROVIDER'] : []), 'ROLE', 'AGE', ...(showExpiry ? ['EXPIRES'] : []), 'STATE', 'WHERE'], rows);
}

export function unknownAgeLine(n: number): string {
  return `${n} token(s) of unknown age (?): the API has not told their creation date yet. Run "mcp-token-rotator scan" (asks the API now), or start the daemon (it asks at start and keeps asking).`;
}

export async function run(values: Values): Promise<number> {
  const forget = typeof values.forget === 'string' ? values.forget : undefined;
  if (forget !== undefined && !isFingerprint(forget)) throw new UsageError(`--forget takes 12 hex characters as "status" shows, not "${forget}".`);
  return withContext(values, async (ctx) => {
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
    if (ctx.store.getMeta('lastScanAt') === null) {
      // First run: nothing recorded yet, so look at the files (offline) before answering.
      const { findTokens, recordScan } = await import('../../scan.js');
      recordScan(ctx, await findTokens(ctx));
    }
    const tokens = buildStatus(ctx);
    const stillAlive = buildStillAlive(ctx);
    // Converted entries that cannot work right now (endpoint down, wrapper gone): exit 2.
    const broker = await (await import('../../broker/health.js')).brokerHealth(ctx);
    if (values.json) printJson({ tokens, replacedStillAlive: stillAlive, brokerProblems: broker });
    else {
      out(renderTokens(tokens, ctx.pathEnv.home));
      const due = tokens.filter((t) => t.state === 'due');
      if (due.length) out(`\n${due.length} token(s) due (>= ${ctx.settings.warnAfterDays} days old, or expiring within ${ctx.settings.warnBeforeExpiryDays} days): run "mcp-token-rotator rotate --if-due".`);
      const bad = tokens.filter((t) => t.state === 'invalid');
      if (bad.length && bad.every((t) => t.provider === 'certorix')) out(`\n${bad.length} token(s) invalid: regenerate in the Certorix web UI (MCP / API page), then pipe the new token to "mcp-token-rotator set-token".`);
      else for (const t of bad) out(`\nToken ${t.fingerprint} (${t.provider}) is invalid: make a new one at ${ctx.tokenPageFor(t.fingerprint)}, then pipe it to "mcp-token-rotator set-token --fingerprint ${t.fingerprint}".`);
      if (tokens.some((t) => t.state === 'rotating')) out('\nA rotation is unfinished; any command finishes it once the API is reachable.');
      for (const t of stillAlive) {
        out(`\nToken ${t.fingerprint} was replaced${t.replacedBy ? ` by ${t.replacedBy}` : ''} but still worked at ${t.aliveAt}: revoke it in ${ctx.tokenPageFor(t.fingerprint)} if it should stop working, then run "mcp-token-rotator status --forget ${t.fingerprint}".`);
      }
    }
    // Only where the provider tells creation dates at all (GitHub and Cloudflare never do).
    const unknown = tokens.filter((t) => t.ageDays === null && t.state !== 'invalid' && (providerModule(t.provider)?.tellsCreationDate ?? true)).length;
    if (unknown) (values.json ? err : out)(`${values.json ? '' : '\n'}${unknownAgeLine(unknown)}`);
    for (const p of broker) (values.json ? err : out)(`${values.json ? '' : '\n'}${p.message}\n  -> ${p.fix}`);
    return broker.length ? EXIT.failure : statusExitCode(tokens.map((t) => t.state));
  });
}
