import type { EventSource } from '../../store/store.js';
import { failpoint } from '../failpoints.js';
import { runHooks } from '../hooks.js';
import { restartHints } from '../result.js';
import type { StepHandler } from './execution.js';

/**
 * `verified` -> `finished`: one history event, the journal row erased of its tokens, the
 * WAL checkpointed so no token value stays at rest; then the post-rotate hooks.
 */
export const finishStep: StepHandler<'finish'> = async (ex, row) => {
  const { ctx, id, log, result } = ex;
  const files = row.files.map((f) => f.path);
  ctx.store.transaction(() => {
    ctx.store.addEvent({
      at: ctx.nowIso(),
      type: row.source === 'set-token' ? 'adopted' : 'rotated',
      fingerprint: row.oldFingerprint,
      newFingerprint: row.newFingerprint,
      source: row.source as EventSource,
      files,
      detail: row.error,
    });
    ctx.journal.finish(id, 'finished', ctx.nowIso());
  });
  failpoint('after-finish');
  // Move the erased rows out of the WAL too, so no token value stays at rest.
  ctx.store.checkpoint();
  log.info({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files, source: row.source }, 'rotation finished');
  result.status = 'rotated';
  result.newFingerprint = row.newFingerprint;
  result.files = row.files.map(({ path, client }) => ({ path, client }));
  result.restart = restartHints(result.files);
  if (ctx.settings.hooks.postRotate.length && row.newFingerprint) {
    result.hooks = await runHooks(ctx.settings.hooks.postRotate, { oldFingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files, source: row.source }, ctx.settings.hooks.timeoutMs);
    for (const h of result.hooks) if (!h.ok) log.warn({ hook: h.command, exitCode: h.exitCode, err: h.error }, 'post-rotate hook failed');
  }
  return 'next';
};
