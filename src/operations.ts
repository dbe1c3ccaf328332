import type { Context } from './context.js';
import type { ProviderClient as Provider, TokenInfo } from './providers/types.js';
import { withRetry } from './api/retry.js';
import { ApiError, RotatorError, UsageError } from './errors.js';
import { isDue } from './rotation/policy.js';
import { rotateTokens, type RotationResult } from './rotation/run.js';
import { findTokens, inspectTokens, recordScan, type FoundToken } from './scan.js';
import type { Secret } from './secret.js';
import { withSlotTokens } from './broker/locations.js';
import type { EventSource } from './store/store.js';
import type { WireRotation, RotateResponse } from './ipc/protocol.js';

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
    targets = [...scan.tokens.keys()].filter((k) => {
      const row = ctx.store.getToken(k);
      if (row && row.state !== 'active') return false; // retired (a stale copy) or invalid (needs set-token)
      if (!p.ifDue) return true;
      return row !== null && isDue(row, now, ctx.settings.warnAfterDays);
    });
    for (const k of scan.tokens.keys()) {
      if (ctx.store.getToken(k)?.state === 'invalid') warnings.push(invalidWarning(k));
    }
  }
  if (!targets.length) return { rotations: [], warnings };
  const results = await rotateTokens(ctx, targets, { source: p.source ?? 'manual', dryRun: p.dryRun === true });
  return respond(results, warnings);
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
  for (const [k, t] of scan.tokens) {
    const state = ctx.store.getToken(k)?.state;
    if (state === 'invalid') warnings.push(invalidWarning(k));
    else if (state === 'retired') retired.push([k, t]);
    else targets.push(k);
  }
  if (retired.length) {
    const provider = await ctx.provider();
    for (const [k, t] of retired) {
      const where = [...new Set(t.sites.map((s) => s.path))].join(', ');
      const alive = await checkAlive(ctx, provider, t.secret);
      if (alive.state === 'alive') {
        // Regenerating it kills it (and the regenerate step clears its still-alive flag).
        targets.push(k);
        notices.push(`token ${k} was retired but the API still accepts it (found in ${where}); regenerating it too.`);
      } else if (alive.state === 'dead') {
        ctx.store.markStillAlive(k, null);
      } else {
        warnings.push(`token ${k} was retired but is still in ${where}, and the API could not be asked whether it still works (${alive.error}); run "mcp-token-rotator revoke-now --yes" again once the API is reachable, or revoke it in the Certorix web UI (MCP / API page).`);
      }
    }
  }
  const inConfigs = new Set(scan.tokens.keys());
  for (const t of ctx.store.listStillAlive()) {
    if (!inConfigs.has(t.fingerprint)) notices.push(stillAliveNotice(t.fingerprint, t.replacedBy, t.stillAliveAt));
  }
  if (!targets.length) return { rotations: [], warnings, notices };
  const results = await rotateTokens(ctx, targets, { source: 'revoke-now' });
  return respond(results, warnings, notices);
}

type Liveness = { state: 'alive'; info: TokenInfo } | { state: 'dead' } | { state: 'unknown'; error: string };

/** GET /v1/token: 401 is the only answer that proves a token dead (403 means it still authenticates). */
async function checkAlive(ctx: Context, provider: Provider, secret: Secret): Promise<Liveness> {
  try {
    return { state: 'alive', info: await withRetry(() => provider.inspect(secret), ctx.settings.retry) };
  } catch (e) {
    if (e instanceof ApiError && e.kind === 'invalid-token') return { state: 'dead' };
    return { state: 'unknown', error: (e as Error).message };
  }
}

export function stillAliveNotice(fp: string, replacedBy: string | null, at: string | null): string {
  return (
    `token ${fp}${replacedBy ? ` (replaced by ${replacedBy})` : ''} still worked${at ? ` at ${at}` : ''}: replacing it in your configs did not revoke it, ` +
    `and this tool no longer holds its value. If it should stop working, revoke it in the Certorix web UI (MCP / API page), then run "mcp-token-rotator status --forget ${fp}".`
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
  const provider = await ctx.provider();
  let info;
  try {
    info = await provider.inspect(secret);
  } catch (e) {
    if (e instanceof ApiError && (e.kind === 'invalid-token' || e.kind === 'forbidden')) {
      // Proof that a replaced token is dead at last: it no longer needs the user.
      if (e.kind === 'invalid-token' && ctx.store.getToken(secret.fingerprint)?.stillAliveAt) ctx.store.markStillAlive(secret.fingerprint, null);
      throw new RotatorError('E_TOKEN_INVALID', `The API rejects the token given on stdin (${secret.fingerprint}); no config was changed.`, {
        hint: 'Copy the token again from the Certorix web UI (MCP / API page) and retry.',
      });
    }
    throw e;
  }
  const scan = await findTokens(ctx).then((s) => withSlotTokens(ctx, s));
  recordScan(ctx, scan);
  let target = fp;
  if (!target) {
    const candidates = [...scan.tokens.keys()].filter((k) => k !== secret.fingerprint);
    const sameAccount = candidates.filter((k) => {
      const row = ctx.store.getToken(k);
      return row?.account != null && row.account === info.email;
    });
    const pick = sameAccount.length ? sameAccount : candidates;
    if (pick.length === 1) target = pick[0];
    else if (!pick.length) {
      if (scan.tokens.has(secret.fingerprint)) return { rotations: [], warnings: [`Token ${secret.fingerprint} is already in place everywhere; nothing to do.`], unchanged: true };
      throw new RotatorError('E_TOKEN_UNKNOWN', 'No config holds a Certorix token to replace.', { hint: 'Add the token to your MCP client config by hand once, then run "mcp-token-rotator scan".' });
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
  ctx.store.recordSeen(secret.fingerprint, 'certorix', ctx.nowIso());
  ctx.store.updateTokenInfo(secret.fingerprint, { role: info.role, account: info.email ?? null, tokenId: info.id, createdAt: info.createdAt ?? null, checkedAt: ctx.nowIso(), state: 'active' });
  // Recorded before the rotation, so a crash in between cannot lose it; it shows only once
  // the token is retired.
  const aliveAt = liveness.state === 'alive' ? ctx.nowIso() : null;
  if (aliveAt) ctx.store.markStillAlive(old, aliveAt);
  const results = await rotateTokens(ctx, [old], { source: 'set-token', adopt: secret });
  const notices: string[] = [];
  const done = results.find((r) => r.status === 'rotated');
  // Not replaced after all: the flag would otherwise surface if the token is retired later.
  if (!done && aliveAt && ctx.store.getToken(old)?.state !== 'retired') ctx.store.markStillAlive(old, null);
  if (done && aliveAt) {
    notices.push(stillAliveNotice(old, done.newFingerprint, aliveAt));
    ctx.store.addEvent({ at: ctx.nowIso(), type: 'replaced-still-alive', fingerprint: old, newFingerprint: done.newFingerprint, source: 'set-token', files: [], detail: 'the API still accepted the replaced token; revoke it in the Certorix web UI (MCP / API page) if it should stop working' });
  } else if (done && liveness.state === 'unknown') {
    notices.push(`token ${old} could not be checked (${liveness.error}); if it still works, replacing it did not revoke it: revoke it in the Certorix web UI (MCP / API page) if it should stop working.`);
  }
  return respond(results, [], notices);
}

function invalidWarning(fp: string): string {
  return `token ${fp} is invalid; regenerate it in the Certorix web UI (MCP / API page), then pipe it to "mcp-token-rotator set-token --fingerprint ${fp}".`;
}
