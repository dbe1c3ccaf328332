import { withRetry } from '../../api/retry.js';
import { ApiError, RotatorError, setTokenHint } from '../../errors.js';
import type { EventSource } from '../../store/store.js';
import { failpoint } from '../failpoints.js';
import type { StepHandler } from './execution.js';
import { warnIfNotCheckpointed } from './finish.js';
import { endLost } from './lose.js';
import { mayRetryRegenerate } from '../machine.js';
import { providerModule } from '../../providers/index.js';
import { certorix } from '../../providers/certorix/index.js';

/** A rotate call without idempotency whose answer was lost: never retried (see lose.ts). */
class AnswerLost extends Error {
  constructor(readonly apiError: ApiError) {
    super(apiError.message);
  }
}

/**
 * `intent` -> `regenerated`: call regenerate with the journaled Idempotency-Key (a replay
 * after a crash gets the first answer again) and make the new token durable before any
 * config is touched (contract guarantee 2). A permanent refusal ends the row as `failed`;
 * a transient one leaves it at `intent` for the next command to replay.
 */
export const regenerateStep: StepHandler<'regenerate'> = async (ex, row) => {
  const { ctx, id, log, oldSecret, result } = ex;
  if (!oldSecret) {
    ctx.journal.finish(id, 'failed', ctx.nowIso(), 'journal lost the old token');
    result.status = 'failed';
    result.error = new RotatorError('E_ROTATION', `Rotation of token ${row.oldFingerprint} cannot be replayed.`, { hint: setTokenHint(row.oldFingerprint) });
    return 'stop';
  }
  const module = providerModule(row.provider) ?? certorix;
  const idempotent = module.rotate === 'regenerate-idempotent';
  const provider = await ctx.client(row.provider, row.apiUrl);
  const regenerate = provider.regenerate?.bind(provider);
  if (!regenerate || module.rotate === 'none') {
    // Refused before any journal row by rotateTokens; a row can still name one (an old journal).
    const msg = `${module.label} cannot rotate token ${row.oldFingerprint} by API.`;
    ctx.journal.finish(id, 'failed', ctx.nowIso(), msg);
    result.status = 'failed';
    result.error = new RotatorError('E_ROTATION', msg, { hint: ctx.setTokenHintFor(row.oldFingerprint) });
    return 'stop';
  }
  const known = ctx.store.getToken(row.oldFingerprint);
  const previous = { createdAt: known?.createdAt ?? null, expiresAt: known?.expiresAt ?? null };
  try {
    const res = await withRetry(
      async () => {
        // Without idempotency the call is journaled before it leaves: if its answer is lost,
        // nothing (a retry, a later command) sends it again (machine.ts, `lose`).
        if (!idempotent) ctx.journal.setStep(id, 'calling', ctx.nowIso());
        try {
          return await regenerate(oldSecret, row.idempotencyKey, { previous, now: ctx.now() });
        } catch (e) {
          if (idempotent || !(e instanceof ApiError)) throw e;
          if (e.transient && !mayRetryRegenerate(false, e)) throw new AnswerLost(e);
          // It never left, or the server refused it: the row is not `calling` any more.
          ctx.journal.setStep(id, 'intent', ctx.nowIso(), e.message);
          throw e;
        }
      },
      ctx.settings.retry,
      {
        onRetry: (attempt, delayMs, err) => {
          ctx.journal.noteAttempt(id, (err as Error).message, ctx.nowIso());
          log.warn(
            { fingerprint: row.oldFingerprint, attempt, delayMs, err: (err as Error).message },
            idempotent ? 'regenerate failed, retrying with the same Idempotency-Key' : 'the rotate call never reached the API; trying again',
          );
        },
      },
    );
    failpoint('after-regenerate-response');
    ctx.store.transaction(() => {
      ctx.journal.recordNewToken(id, { token: res.token.reveal(), fingerprint: res.token.fingerprint, tokenId: res.id, createdAt: res.createdAt ?? null, now: ctx.nowIso() });
      // Regenerating killed it: whatever set-token once saw of it, it is not alive any more.
      ctx.store.markStillAlive(row.oldFingerprint, null);
    });
    failpoint('after-new-token');
    log.info({ fingerprint: row.oldFingerprint, newFingerprint: res.token.fingerprint }, 'token regenerated');
    return 'next';
  } catch (e) {
    if (e instanceof AnswerLost) {
      endLost(ex, row, `its answer was lost (${e.apiError.message})`);
      return 'stop';
    }
    if (e instanceof ApiError && !e.transient) {
      // Any other refusal may or may not have cost the old token (an unusable minted token
      // did): ask, so status tells the truth. Certorix's 403 on regenerate means the token is
      // done for; another provider's 403 is a missing permission on a token that still works.
      let dead = e.kind === 'invalid-token' || (e.kind === 'forbidden' && row.provider === 'certorix');
      if (!dead && e.kind !== 'forbidden') dead = await provider.inspect(oldSecret).then(() => false, (x: unknown) => x instanceof ApiError && x.kind === 'invalid-token');
      ctx.store.transaction(() => {
        if (dead) ctx.store.setTokenState(row.oldFingerprint, 'invalid');
        ctx.journal.finish(id, 'failed', ctx.nowIso(), e.message);
        ctx.store.addEvent({ at: ctx.nowIso(), type: 'rotation-failed', fingerprint: row.oldFingerprint, newFingerprint: null, source: row.source as EventSource, files: [], detail: e.message });
      });
      warnIfNotCheckpointed(ex, ctx.store.checkpoint());
      result.status = 'failed';
      result.error =
        row.provider !== 'certorix'
          ? new RotatorError(e.code, `${e.message} No config was changed.`, { hint: e.kind === 'forbidden' ? (e.hint ?? ctx.setTokenHintFor(row.oldFingerprint)) : ctx.setTokenHintFor(row.oldFingerprint) })
          : e.kind === 'invalid-token' || e.kind === 'forbidden'
            ? new RotatorError(e.code, `The API refused token ${row.oldFingerprint} (${e.status ?? e.kind}); no config was changed.`, { hint: setTokenHint(row.oldFingerprint) })
            : e;
      return 'stop';
    }
    ctx.journal.noteAttempt(id, (e as Error).message, ctx.nowIso());
    if (!idempotent) {
      result.error = new RotatorError('E_API_TRANSIENT', `The ${module.label} API could not be reached to rotate token ${row.oldFingerprint} (${(e as Error).message}); the call never left, so nothing changed.`, {
        hint: 'The rotation is journaled; run any command again (e.g. "mcp-token-rotator status") once the API is reachable and it is sent then.',
      });
      return 'stop';
    }
    result.error = new RotatorError('E_API_TRANSIENT', `Regenerating token ${row.oldFingerprint} failed: ${(e as Error).message}`, {
      hint: 'The rotation is journaled; run any command again (e.g. "mcp-token-rotator status") once the API is reachable and it resumes with the same request.',
    });
    return 'stop';
  }
};
