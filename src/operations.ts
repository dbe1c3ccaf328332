import type { Context } from './context.js';
import { reportRetries } from './progress.js';
import type { ProviderClient as Provider, TokenInfo } from './providers/types.js';
import { withRetry } from './api/retry.js';
import { ApiError, RotatorError, UsageError } from './errors.js';
import { isDue } from './rotation/policy.js';
import { rotateTokens, type RotationResult } from './rotation/run.js';
import { acceptedTokenFacts, findTokens, inspectTokens, recordScan, type FoundToken } from './scan.js';
import type { Secret } from './secret.js';
import { brokerPort, withSlotTokens } from './broker/rotation-port.js';
import type { EventSource } from './store/store.js';
import type { WireRotation, RotateResponse } from './ipc/protocol.js';
import { PROVIDERS, providerModule, setTokenProviders } from './providers/index.js';
import { certorix } from './providers/certorix/index.js';

/**
 * The mutating commands as operations, shared by the CLI (when no daemon runs) and the
 * daemon's control socket (when one does), so both do exactly the same thing.
 */

export interface RotateOpParams {
  fingerprints?: string[];
  ifDue?: boolean;
  dryRun?: boolean;
  source?: EventSource;
}

export function toWire(r: RotationResult): WireRotation {
  const { error, notices: _notices, leftToFix: _leftToFix, ...rest } = r;
  return { ...rest, ...(error ? { error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}), ...(error.file ? { file: error.file } : {}) } } : {}) };
}

/** The response, with each rotation's notices lifted to the top where the CLI prints them. */
function respond(results: RotationResult[], warnings: string[], notices: string[] = []): RotateResponse {
  const all = [...notices, ...results.flatMap((r) => r.notices ?? [])];
  return { rotations: results.map(toWire), warnings: [...warnings, ...results.flatMap((r) => r.leftToFix ?? [])], ...(all.length ? { notices: all } : {}) };
}

export async function rotateOp(ctx: Context, p: RotateOpParams): Promise<RotateResponse> {
  const warnings: string[] = [];
  const manual: Array<ManualStep & { message: string }> = [];
  let targets = p.fingerprints ?? [];
  if (!p.fingerprints?.length) {
    const scan = await findTokens(ctx).then((s) => withSlotTokens(ctx, s));
    if (!p.dryRun) {
      recordScan(ctx, scan);
      // Age decides --if-due; ask the API about tokens never checked.
      const unknown = [...scan.tokens].filter(([k]) => !ctx.store.getToken(k)?.lastCheckedAt);
      if (p.ifDue && unknown.length) await inspectTokens(ctx, unknown.map(([k, t]) => [k, t.secret] as [string, Secret]));
    }
    const now = ctx.now();
    const candidates = [...scan.tokens.keys()].filter((k) => {
      const row = ctx.store.getToken(k);
      if (row && row.state !== 'active') return false; // retired (a stale copy) or invalid (needs set-token)
      if (!p.ifDue) return true;
      return row !== null && isDue(row, now, ctx.settings.warnAfterDays, ctx.settings.warnBeforeExpiryDays);
    });
    // Every token whose provider can rotate is rotated; the others are listed with what to do.
    targets = candidates.filter((k) => canRotate(ctx, k, scan.tokens.get(k)?.provider));
    for (const k of candidates) if (!targets.includes(k)) manual.push(manualStep(ctx, k));
    for (const k of scan.tokens.keys()) {
      if (ctx.store.getToken(k)?.state === 'invalid') warnings.push(invalidWarning(ctx, k));
    }
  }
  if (p.fingerprints?.length) await refuseUnknownFingerprints(ctx, p.fingerprints);
  const notices = manual.map((m) => m.message);
  const extra = manual.length ? { manual: manual.map(({ message: _m, ...rest }) => rest) } : {};
  if (!targets.length) return { rotations: [], warnings, ...(notices.length ? { notices } : {}), ...extra };
  const results = await rotateTokens(ctx, targets, { source: p.source ?? 'manual', dryRun: p.dryRun === true, broker: brokerPort });
  return { ...respond(results, warnings, notices), ...extra };
}

/** What the user does for a token its provider cannot rotate: make one on the web, then set-token. */
export interface ManualStep {
  fingerprint: string;
  provider: string;
  page: string;
  command: string;
}

function canRotate(ctx: Context, fp: string, scanned?: string): boolean {
  const name = scanned ?? ctx.store.getToken(fp)?.provider ?? 'certorix';
  return (providerModule(name)?.rotate ?? 'none') !== 'none';
}

function manualStep(ctx: Context, fp: string): ManualStep & { message: string } {
  const p = ctx.providerOfToken(fp);
  const page = ctx.tokenPageFor(fp);
  const command = `mcp-token-rotator set-token --fingerprint ${fp}`;
  return {
    fingerprint: fp,
    provider: p.name,
    page,
    command,
    message: `${p.label} token ${fp} cannot be rotated by API: make a new one at ${page}, then pipe it to "${command}".`,
  };
}

/**
 * A mistyped --fingerprint is a usage error (exit 64), not a refused rotation in the history:
 * a fingerprint this tool has never seen, in the store or in any config, names nothing.
 */
async function refuseUnknownFingerprints(ctx: Context, fps: string[]): Promise<void> {
  let unknown = fps.filter((fp) => !ctx.store.getToken(fp));
  if (!unknown.length) return;
  const scan = await findTokens(ctx).then((s) => withSlotTokens(ctx, s));
  unknown = unknown.filter((fp) => !scan.tokens.has(fp));
  if (unknown.length) {
    throw new UsageError(`No tracked token has the fingerprint ${unknown.join(', ')}.`, 'Copy it from "mcp-token-rotator status" (12 hex characters), or run "mcp-token-rotator scan" if the token was added since.');
  }
}

/**
 * "Revoke all now": every live token a config holds is regenerated. That includes a token
 * recorded as retired that still answers 200 (set-token replaced it without killing it, or a
 * stale copy of one never revoked): skipping it would leave a leak alive. Replaced tokens no
 * config holds any more cannot be revoked from here (their value is gone): they are named.
 */
export async function revokeNowOp(ctx: Context): Promise<RotateResponse> {
  const scan = await findTokens(ctx).then((s) => withSlotTokens(ctx, s));
  recordScan(ctx, scan);
  const warnings: string[] = [];
  const notices: string[] = [];
  const targets: string[] = [];
  const retired: Array<[string, FoundToken]> = [];
  const cannot: Array<[string, FoundToken]> = [];
  for (const [k, t] of scan.tokens) {
    const state = ctx.store.getToken(k)?.state;
    if (state === 'invalid') warnings.push(invalidWarning(ctx, k));
    else if (!canRotate(ctx, k, t.provider)) cannot.push([k, t]);
    else if (state === 'retired') retired.push([k, t]);
    else targets.push(k);
  }
  // A leak is not over while one still works: each token this tool cannot regenerate is
  // asked about (its own provider only) and named with its page while it works (exit 2).
  for (const [k, t] of cannot) {
    const alive = await checkAlive(ctx, await ctx.clientForToken(k), t.secret);
    const m = manualStep(ctx, k);
    if (alive.state === 'dead') {
      ctx.store.updateTokenInfo(k, { checkedAt: ctx.nowIso(), state: 'invalid' });
      continue;
    }
    const works = alive.state === 'alive' ? 'still works' : `could not be checked (${alive.error}), so it may still work`;
    warnings.push(`${ctx.providerOfToken(k).label} token ${k} ${works} and this tool cannot revoke it: revoke it at ${m.page}, make a new one there, then pipe it to "${m.command}".`);
  }
  if (retired.length) {
    for (const [k, t] of retired) {
      const where = [...new Set(t.sites.map((s) => s.path))].join(', ');
      const alive = await checkAlive(ctx, await ctx.clientForToken(k), t.secret);
      if (alive.state === 'alive') {
        // Regenerating it kills it (and the regenerate step clears its still-alive flag).
        targets.push(k);
        notices.push(`token ${k} was retired but the API still accepts it (found in ${where}); regenerating it too.`);
      } else if (alive.state === 'dead') {
        ctx.store.markStillAlive(k, null);
      } else {
        warnings.push(`token ${k} was retired but is still in ${where}, and the API could not be asked whether it still works (${alive.error}); run "mcp-token-rotator revoke-now --yes" again once the API is reachable, or revoke it in ${ctx.tokenPageFor(k)}.`);
      }
    }
  }
  const inConfigs = new Set(scan.tokens.keys());
  for (const t of ctx.store.listStillAlive()) {
    if (!inConfigs.has(t.fingerprint)) notices.push(stillAliveNotice(t.fingerprint, t.replacedBy, t.stillAliveAt, ctx.tokenPageFor(t.fingerprint)));
  }
  if (!targets.length) return { rotations: [], warnings, notices };
  const results = await rotateTokens(ctx, targets, { source: 'revoke-now', broker: brokerPort });
  return respond(results, warnings, notices);
}

type Liveness = { state: 'alive'; info: TokenInfo } | { state: 'dead' } | { state: 'unknown'; error: string };

/** GET /v1/token: 401 is the only answer that proves a token dead (403 means it still authenticates). */
async function checkAlive(ctx: Context, provider: Provider, secret: Secret): Promise<Liveness> {
  try {
    return { state: 'alive', info: await withRetry(() => provider.inspect(secret), ctx.settings.retry, { onRetry: reportRetries(`checking token ${secret.fingerprint} with the API`, ctx.settings.retry.attempts) }) };
  } catch (e) {
    if (e instanceof ApiError && e.kind === 'invalid-token') return { state: 'dead' };
    return { state: 'unknown', error: (e as Error).message };
  }
}

export function stillAliveNotice(fp: string, replacedBy: string | null, at: string | null, page = 'the Certorix web UI (MCP / API page)'): string {
  return (
    `token ${fp}${replacedBy ? ` (replaced by ${replacedBy})` : ''} still worked${at ? ` at ${at}` : ''}: replacing it in your configs did not revoke it, ` +
    `and this tool no longer holds its value. If it should stop working, revoke it in ${page}, then run "mcp-token-rotator status --forget ${fp}".`
  );
}

/** The fingerprint an account-change refusal is about, so the CLI can ask and retry with it. */
export function accountChangeTarget(e: RotatorError): string | null {
  return e.code === 'E_ACCOUNT_CHANGE' ? ((e.hint ?? '').match(/--fingerprint ([0-9a-f]{12})/)?.[1] ?? null) : null;
}

export interface SetTokenResponse extends RotateResponse {
  unchanged?: boolean;
}

export async function setTokenOp(ctx: Context, secret: Secret, fp?: string): Promise<SetTokenResponse> {
  // The entries first: the token is checked only with the provider of the entry it replaces.
  const scan = await findTokens(ctx).then((s) => withSlotTokens(ctx, s));
  recordScan(ctx, scan);
  const providerOf = (k: string): string => scan.tokens.get(k)?.provider ?? ctx.store.getToken(k)?.provider ?? 'certorix';
  let candidates = [...scan.tokens.keys()].filter((k) => k !== secret.fingerprint);
  if (fp) {
    if (!scan.tokens.has(fp) && ctx.store.getToken(fp) === null) candidates = [];
    else candidates = [fp];
  }
  const names = setTokenProviders(secret.reveal(), candidates.map(providerOf));
  const prefixed = PROVIDERS.find((p) => p.tokenPrefixes.some((pre) => secret.reveal().startsWith(pre)));
  if (!names.length && candidates.length && prefixed) {
    throw new RotatorError('E_TOKEN_UNKNOWN', `The token given on stdin (${secret.fingerprint}) looks like a ${prefixed.label} token, but no config holds a ${prefixed.label} token${fp ? ` as ${fp}` : ''} to replace; it was sent nowhere and nothing was changed.`, {
      hint: fp ? `Token ${fp} is a ${providerModule(providerOf(fp))?.label ?? providerOf(fp)} token; pipe one of those, or pick the token to replace from "mcp-token-rotator status".` : `Add it to your MCP client config by hand once (e.g. ${prefixed.envVar} in the server's env), then run "mcp-token-rotator scan".`,
    });
  }
  if (names.length > 1) {
    throw new UsageError(
      `The token given on stdin could replace tokens of more than one provider: ${candidates.map((k) => `${k} (${providerOf(k)})`).join(', ')}; it was sent nowhere.`,
      'Say which with --fingerprint FP (see "mcp-token-rotator status"); the token is then checked with that token\'s provider only.',
    );
  }
  candidates = candidates.filter((k) => names.includes(providerOf(k)));
  const providerName = names[0];
  const bases = [...new Set(candidates.map((k) => scan.tokens.get(k)?.apiUrl ?? ctx.store.getToken(k)?.apiUrl ?? null))];
  if (!fp && bases.length > 1) {
    throw new UsageError(`Tokens ${candidates.join(', ')} belong to ${providerName} at different API bases; the token given on stdin was sent nowhere.`, 'Say which to replace with --fingerprint FP (see "mcp-token-rotator status").');
  }
  if (providerName === undefined) {
    if (scan.tokens.has(secret.fingerprint)) return { rotations: [], warnings: [`Token ${secret.fingerprint} is already in place everywhere; nothing to do.`], unchanged: true };
    if (fp) throw new RotatorError('E_TOKEN_UNKNOWN', `No config holds token ${fp}; nothing was changed.`, { hint: 'Pick the token to replace from "mcp-token-rotator status".' });
    throw new RotatorError('E_TOKEN_UNKNOWN', 'No config holds a token to replace.', { hint: 'Add the token to your MCP client config by hand once, then run "mcp-token-rotator scan".' });
  }
  const module = providerModule(providerName) ?? certorix;
  const provider = await ctx.client(providerName, bases[0] ?? null);
  const page = module.tokenPage(ctx.apiBaseFor(providerName, bases[0] ?? null));
  let info;
  try {
    info = await provider.inspect(secret);
  } catch (e) {
    if (e instanceof ApiError && (e.kind === 'invalid-token' || e.kind === 'forbidden')) {
      // Proof that a replaced token is dead at last: it no longer needs the user.
      if (e.kind === 'invalid-token' && ctx.store.getToken(secret.fingerprint)?.stillAliveAt) ctx.store.markStillAlive(secret.fingerprint, null);
      throw new RotatorError('E_TOKEN_INVALID', `${module.name === 'certorix' ? 'The API' : module.label} rejects the token given on stdin (${secret.fingerprint}); no config was changed.`, {
        hint: module.name === 'certorix' ? 'Copy the token again from the Certorix web UI (MCP / API page) and retry.' : `Copy the token again from ${page} and retry.`,
      });
    }
    throw e;
  }
  let target = fp;
  if (!target) {
    const sameAccount = candidates.filter((k) => {
      const row = ctx.store.getToken(k);
      return row?.account != null && row.account === info.email;
    });
    const pick = sameAccount.length ? sameAccount : candidates;
    if (pick.length === 1) target = pick[0];
    else if (!pick.length) {
      if (scan.tokens.has(secret.fingerprint)) return { rotations: [], warnings: [`Token ${secret.fingerprint} is already in place everywhere; nothing to do.`], unchanged: true };
      throw new RotatorError('E_TOKEN_UNKNOWN', `No config holds a ${module.label} token to replace.`, { hint: 'Add the token to your MCP client config by hand once, then run "mcp-token-rotator scan".' });
    } else {
      throw new UsageError(`More than one tracked token could be the one to replace: ${pick.join(', ')}.`, 'Say which with --fingerprint FP (see "mcp-token-rotator status").');
    }
  }
  if (target === secret.fingerprint) return { rotations: [], warnings: [`Token ${secret.fingerprint} is already in place; nothing to do.`], unchanged: true };
  const old: string = target as string;
  // Replacing a token in the configs does not revoke it: ask whether it still works, so it is
  // neither backed up in clear nor forgotten while it can still be used.
  const oldFound = scan.tokens.get(old);
  const liveness = oldFound ? await checkAlive(ctx, provider, oldFound.secret) : ({ state: 'dead' } as const);
  const oldAccount = (liveness.state === 'alive' ? liveness.info.email : undefined) ?? ctx.store.getToken(old)?.account ?? null;
  if (!fp && oldAccount && info.email && oldAccount.toLowerCase() !== info.email.toLowerCase()) {
    // Never swap accounts silently: the user names the token, or confirms on a terminal.
    throw new RotatorError('E_ACCOUNT_CHANGE', `Token ${secret.fingerprint} belongs to another account (${info.email}) than token ${old} (${oldAccount}), which it would replace; nothing was changed.`, {
      hint: `If the configs should switch accounts, run again with --fingerprint ${old}; otherwise pipe a token of ${oldAccount}.`,
    });
  }
  ctx.store.recordSeen(secret.fingerprint, providerName, ctx.nowIso(), bases[0] ?? null);
  ctx.store.updateTokenInfo(secret.fingerprint, acceptedTokenFacts(info, ctx.nowIso()));
  // Recorded before the rotation, so a crash in between cannot lose it; it shows only once
  // the token is retired.
  const aliveAt = liveness.state === 'alive' ? ctx.nowIso() : null;
  if (aliveAt) ctx.store.markStillAlive(old, aliveAt);
  const results = await rotateTokens(ctx, [old], { source: 'set-token', adopt: secret, broker: brokerPort });
  const notices: string[] = [];
  const done = results.find((r) => r.status === 'rotated');
  // Not replaced after all: the flag would otherwise surface if the token is retired later.
  if (!done && aliveAt && ctx.store.getToken(old)?.state !== 'retired') ctx.store.markStillAlive(old, null);
  if (done && aliveAt) {
    notices.push(stillAliveNotice(old, done.newFingerprint, aliveAt, page));
    ctx.store.addEvent({ at: ctx.nowIso(), type: 'replaced-still-alive', fingerprint: old, newFingerprint: done.newFingerprint, source: 'set-token', files: [], detail: `the API still accepted the replaced token; revoke it in ${page} if it should stop working` });
  } else if (done && liveness.state === 'unknown') {
    notices.push(`token ${old} could not be checked (${liveness.error}); if it still works, replacing it did not revoke it: revoke it in ${page} if it should stop working.`);
  }
  return respond(results, [], notices);
}

function invalidWarning(ctx: Context, fp: string): string {
  return `token ${fp} is invalid; regenerate it in ${ctx.tokenPageFor(fp)}, then pipe it to "mcp-token-rotator set-token --fingerprint ${fp}".`;
}
