import type { EventSource } from '../../store/store.js';
import { failpoint } from '../failpoints.js';
import { runHooks } from '../hooks.js';
import { restartHints } from '../result.js';
import type { CheckpointOutcome } from '../../store/db.js';
import type { Execution, StepHandler } from './execution.js';

/**
 * Another process held the database in a read transaction for longer than the bounded wait:
 * the WAL may still hold erased journal pages. Say so; every later start of any command (or
 * the daemon's next rotation) checkpoints again.
 */
export function warnIfNotCheckpointed(ex: Execution, ck: CheckpointOutcome): void {
  if (ck.done) return;
  ex.log.warn({ busy: ck.busy, log: ck.log, checkpointed: ck.checkpointed, attempts: ck.attempts }, 'the state database stayed busy: erased token values may remain in its WAL until the next command');
  ex.result.notices = [
    ...(ex.result.notices ?? []),
    `Another process kept the state database busy, so the erased token values may still sit in ${ex.ctx.paths.db}-wal; run any command (e.g. "mcp-token-rotator status") once it is idle to erase them.`,
  ];
}

/**
 * `verified` -> `finished`: one history event, the journal row erased of its tokens, the
 * WAL checkpointed so no token value stays at rest; then the post-rotate hooks.
 */
export const finishStep: StepHandler<'finish'> = async (ex, row) => {
  const { ctx, id, log, result } = ex;
  // A config that could not hold the new token was not rewritten: it is reported, not listed.
  const written = row.files.filter((f) => !f.unholdable);
  const files = written.map((f) => f.path);
  ctx.store.transaction(() => {
    ctx.store.addEvent({
      at: ctx.nowIso(),
      type: row.source === 'set-token' ? 'adopted' : 'rotated',
      fingerprint: row.oldFingerprint,
      newFingerprint: row.newFingerprint,
      source: row.source as EventSource,
      files,
      detail: row.error ?? (written.length < row.files.length ? `${row.files.length - written.length} config(s) cannot hold the new token and keep the old one` : null),
    });
    ctx.journal.finish(id, 'finished', ctx.nowIso());
  });
  failpoint('after-finish');
  // Move the erased rows out of the WAL too, so no token value stays at rest.
  warnIfNotCheckpointed(ex, ctx.store.checkpoint());
  log.info({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files, source: row.source }, 'rotation finished');
  result.status = 'rotated';
  result.newFingerprint = row.newFingerprint;
  result.files = written.map(({ path, client }) => ({ path, client }));
  const left = row.files.filter((f) => f.unholdable);
  if (left.length) {
    result.leftToFix = left.map(
      (f) =>
        `${f.unholdable}. It still holds the old token ${row.oldFingerprint}${row.source === 'set-token' ? '' : ', which is dead'}. Remove that copy, or run "mcp-token-rotator rotate --fingerprint ${row.newFingerprint}" so Certorix issues another token (the daemon then heals that file with it).`,
    );
  }
  result.restart = restartHints(result.files);
  if (ctx.settings.hooks.postRotate.length && row.newFingerprint) {
    result.hooks = await runHooks(ctx.settings.hooks.postRotate, { oldFingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files, source: row.source }, ctx.settings.hooks.timeoutMs);
    for (const h of result.hooks) if (!h.ok) log.warn({ hook: h.command, exitCode: h.exitCode, err: h.error }, 'post-rotate hook failed');
  }
  return 'next';
};
