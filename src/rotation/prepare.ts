/**
 * What a fresh rotation does right before the regenerate call, so that the time between
 * the old token's death (the 201) and the last config being durable is only the writes:
 *
 * - `checkAlive`: GET /v1/token with the old token. A token that is already dead gets a
 *   clear error before any API mutation and before a journal row exists; a live one has
 *   warmed the connection and the HTTP client's response path that the 201 then takes
 *   (in a fresh CLI process that first parse is tens of milliseconds).
 * - `prepareWrites`: each planned config's temp file created, opened and given the old
 *   file's mode and owner; the lock library loaded if a client needs it. After the response
 *   only the substitution, the writes, the fsyncs and the renames remain.
 *
 * Not for a replay after a crash: there the old token may already be dead by our own
 * regenerate, and the journaled Idempotency-Key is what makes the call safe.
 */
import { withRetry } from '../api/retry.js';
import { reportRetries } from '../progress.js';
import { clientById } from '../clients/catalog.js';
import { prepareAtomicWrite, type PreparedWrite } from '../clients/write.js';
import type { Context } from '../context.js';
import { ApiError, RotatorError, errorMessage } from '../errors.js';
import type { EventSource } from '../store/store.js';
import type { RotationPlan } from './plan.js';

/** Past this many files the temp files are opened after the call, as before (open file limit). */
export const MAX_PREPARED_FILES = 256;

/**
 * Null when the API accepts the token. Otherwise the error to report: nothing was called
 * that changes anything and no file was written. A refused token is recorded as invalid.
 */
export async function checkAlive(ctx: Context, plan: RotationPlan, source: EventSource, opts: { dryRun?: boolean } = {}): Promise<RotatorError | null> {
  const fp = plan.fingerprint;
  // Only the token's own provider is asked (by the entry that holds it, as recorded).
  const provider = await ctx.clientForToken(fp);
  try {
    await withRetry(() => provider.inspect(plan.secret), ctx.settings.retry, { onRetry: reportRetries(`checking token ${fp} with the API`, ctx.settings.retry.attempts) });
    return null;
  } catch (e) {
    if (e instanceof ApiError && (e.kind === 'invalid-token' || e.kind === 'forbidden')) {
      if (opts.dryRun) {
        // A dry run writes nothing, not even what it learnt: the real run records it.
        return new RotatorError(e.code, `Token ${fp} is dead: the API refused it (${e.status ?? e.kind}); a rotation would fail.`, { hint: ctx.setTokenHintFor(fp), cause: e });
      }
      const detail = `the API refused the token (${e.status ?? e.kind}) before it was regenerated`;
      ctx.store.transaction(() => {
        ctx.store.setTokenState(fp, 'invalid');
        ctx.store.addEvent({ at: ctx.nowIso(), type: 'rotation-refused', fingerprint: fp, newFingerprint: null, source, files: [], detail });
      });
      return new RotatorError(e.code, `Token ${fp} is already dead: ${detail}. Nothing was regenerated and no config was changed.`, { hint: ctx.setTokenHintFor(fp), cause: e });
    }
    return new RotatorError('E_API_TRANSIENT', `Could not check token ${fp} with the API before regenerating it (${e instanceof Error ? e.message : String(e)}); nothing was called that changes it and no config was changed.`, {
      hint: ctx.providerOfToken(fp).name === 'certorix' ? 'Check the network and "apiUrl" (or CERTORIX_API_URL), then run the command again.' : (e instanceof RotatorError && e.hint) || 'Check the network, then run the command again.',
      cause: e,
    });
  }
}

/** Opens the temp file of every planned config. On any failure, none is kept (the writes then open their own). */
export async function prepareWrites(ctx: Context, plan: RotationPlan): Promise<Map<string, PreparedWrite>> {
  const prepared = new Map<string, PreparedWrite>();
  if (plan.files.some((f) => clientById(f.client).lockDir)) await import('proper-lockfile');
  if (plan.files.length > MAX_PREPARED_FILES) return prepared;
  const opened = await Promise.allSettled(
    plan.files.map(async (f) => [f.path, await prepareAtomicWrite(f.snapshot.realPath, { mode: f.snapshot.stat.mode, uid: f.snapshot.stat.uid, gid: f.snapshot.stat.gid })] as const),
  );
  for (const o of opened) if (o.status === 'fulfilled') prepared.set(o.value[0], o.value[1]);
  if (prepared.size < plan.files.length) {
    // Preflight just proved each directory writable, so this is a race (or the fd limit):
    // the writes will report it properly if it persists.
    const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    ctx.log.debug({ err: errorMessage(failed?.reason) }, 'could not prepare every temp file before the call; they are opened after it');
    await discardWrites(prepared);
    prepared.clear();
  }
  return prepared;
}

/** Removes the temp files that were not used (the rotation stopped, or a file changed). */
export async function discardWrites(prepared: Map<string, PreparedWrite>): Promise<void> {
  await Promise.all([...prepared.values()].map((w) => w.discard()));
}
