import { withRetry } from '../../api/retry.js';
import { ApiError, RotatorError } from '../../errors.js';
import { providerModule } from '../../providers/index.js';
import { Secret } from '../../secret.js';
import { failpoint } from '../failpoints.js';
import { verifyFiles } from '../rewrite.js';
import type { StepHandler } from './execution.js';

/**
 * Every file written -> `verified`: read each one back (contract guarantee 6), then ask the
 * API about the new token and record it as the old one's successor. A rejected new token
 * is recorded as invalid and the rotation still finishes: there is nothing better to put back.
 */
export const verifyStep: StepHandler<'verify'> = async (ex, row) => {
  const { ctx, id, result } = ex;
  const newSecret = new Secret(row.newToken as string);
  await verifyFiles(row);
  // The new token goes only to its own provider, at the base the rotation was journaled with.
  const provider = await ctx.client(row.provider, row.apiUrl);
  const noCreationDate = providerModule(row.provider)?.tellsCreationDate === false;
  try {
    const info = await withRetry(() => provider.inspect(newSecret), ctx.settings.retry);
    ctx.store.transaction(() => {
      ctx.journal.setStep(id, 'verified', ctx.nowIso());
      ctx.store.recordSuccessor(
        row.oldFingerprint,
        newSecret.fingerprint,
        { tokenId: info.id || row.newTokenId, createdAt: info.createdAt ?? row.newCreatedAt, noCreationDate, ...(info.expiresAt !== undefined ? { expiresAt: info.expiresAt } : {}) },
        ctx.nowIso(),
      );
      ctx.store.updateTokenInfo(newSecret.fingerprint, { role: info.role, account: info.email ?? null, checkedAt: ctx.nowIso(), state: 'active', ...(info.tokenKind !== undefined ? { tokenKind: info.tokenKind } : {}) });
    });
    failpoint('after-verified');
    return 'next';
  } catch (e) {
    if (e instanceof ApiError && !e.transient) {
      ctx.store.transaction(() => {
        ctx.journal.setStep(id, 'verified', ctx.nowIso(), e.message);
        ctx.store.recordSuccessor(row.oldFingerprint, newSecret.fingerprint, { tokenId: row.newTokenId, createdAt: row.newCreatedAt, noCreationDate }, ctx.nowIso());
        ctx.store.setTokenState(newSecret.fingerprint, 'invalid');
      });
      result.error = new RotatorError('E_TOKEN_INVALID', `The new token ${newSecret.fingerprint} is written everywhere but the API rejects it (${e.status ?? e.kind}).`, {
        hint: ctx.setTokenHintFor(newSecret.fingerprint),
      });
      return 'next';
    }
    ctx.journal.noteAttempt(id, (e as Error).message, ctx.nowIso());
    result.error = new RotatorError('E_API_TRANSIENT', `Token ${newSecret.fingerprint} is written everywhere but could not be checked with the API: ${(e as Error).message}`, {
      hint: 'Run any command again once the API is reachable to finish the rotation.',
    });
    return 'stop';
  }
};
