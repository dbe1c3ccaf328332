import type { Context } from './context.js';
import { ApiError, RotatorError, UsageError } from './errors.js';
import { isDue } from './rotation/policy.js';
import { rotateTokens, type RotationResult } from './rotation/run.js';
import { findTokens, inspectTokens, recordScan } from './scan.js';
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
  const { error, ...rest } = r;
  return { ...rest, ...(error ? { error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}), ...(error.file ? { file: error.file } : {}) } } : {}) };
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
  return { rotations: results.map(toWire), warnings };
}

export async function revokeNowOp(ctx: Context): Promise<RotateResponse> {
  const scan = await findTokens(ctx).then((s) => withSlotTokens(ctx, s));
  recordScan(ctx, scan);
  const warnings: string[] = [];
  const targets: string[] = [];
  for (const k of scan.tokens.keys()) {
    const state = ctx.store.getToken(k)?.state;
    if (state === 'invalid') warnings.push(invalidWarning(k));
    else if (state !== 'retired') targets.push(k);
  }
  if (!targets.length) return { rotations: [], warnings };
  const results = await rotateTokens(ctx, targets, { source: 'revoke-now' });
  return { rotations: results.map(toWire), warnings };
}

export async function setTokenOp(ctx: Context, secret: Secret, fp?: string): Promise<RotateResponse & { unchanged?: boolean }> {
  const provider = await ctx.provider();
  let info;
  try {
    info = await provider.inspect(secret);
  } catch (e) {
    if (e instanceof ApiError && (e.kind === 'invalid-token' || e.kind === 'forbidden')) {
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
  ctx.store.recordSeen(secret.fingerprint, 'certorix', ctx.nowIso());
  ctx.store.updateTokenInfo(secret.fingerprint, { role: info.role, account: info.email ?? null, tokenId: info.id, createdAt: info.createdAt ?? null, checkedAt: ctx.nowIso(), state: 'active' });
  const results = await rotateTokens(ctx, [target as string], { source: 'set-token', adopt: secret });
  return { rotations: results.map(toWire), warnings: [] };
}

function invalidWarning(fp: string): string {
  return `token ${fp} is invalid; regenerate it in the Certorix web UI (MCP / API page), then pipe it to "mcp-token-rotator set-token --fingerprint ${fp}".`;
}
