import { RotatorError, setTokenHint } from '../../errors.js';
import type { EventSource } from '../../store/store.js';
import { warnIfNotCheckpointed } from './finish.js';
import type { StepHandler } from './execution.js';

/**
 * `regenerated`, but no config can hold the new token (e.g. it has a tab): replaying would
 * fail the same way forever, with both tokens kept in the journal and every command stuck
 * behind it. So the row ends here as `failed`, erased of its tokens. The old token is dead
 * (Certorix revoked it when it issued the new one) and every config still holds it: it is
 * recorded `invalid`, so `status` shows the configs and the one way out (the web UI, then
 * set-token), which also replaces the new token that nothing holds.
 */
export const abandonStep: StepHandler<'abandon'> = async (ex, row) => {
  const { ctx, id, log, result } = ex;
  const files = row.files.map((f) => f.path);
  const why = row.files.map((f) => `  ${f.unholdable ?? f.path}`).join('\n');
  // set-token adopted a token from elsewhere: nothing here revoked the old one, and nothing changed.
  const adopted = row.source === 'set-token';
  const message = adopted
    ? `The token given to set-token (${row.newFingerprint}) cannot be written into any config holding ${row.oldFingerprint}; nothing was changed:\n${why}`
    : `Certorix issued a new token ${row.newFingerprint} for ${row.oldFingerprint}, but no config can hold it; the old token is dead and every config still holds it:\n${why}`;
  ctx.store.transaction(() => {
    if (!adopted) ctx.store.setTokenState(row.oldFingerprint, 'invalid');
    ctx.journal.finish(id, 'failed', ctx.nowIso(), 'no config can hold the new token');
    ctx.store.addEvent({ at: ctx.nowIso(), type: 'rotation-failed', fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, source: row.source as EventSource, files, detail: 'no config can hold the new token' });
  });
  warnIfNotCheckpointed(ex, ctx.store.checkpoint());
  log.warn({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files }, 'no config can hold the new token; the rotation is abandoned and the old token is invalid');
  result.status = 'failed';
  result.error = new RotatorError('E_CONFIG_CANNOT_HOLD', message, {
    file: files[0],
    hint: adopted ? 'Copy the token again from the Certorix web UI (MCP / API page); if it really has these characters, regenerate it there and pipe the new one.' : setTokenHint(row.oldFingerprint),
  });
  return 'stop';
};
