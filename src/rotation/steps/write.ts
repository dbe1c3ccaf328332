import type { FileFormat } from '../../clients/formats.js';
import { RotatorError } from '../../errors.js';
import { findTokens } from '../../scan.js';
import { Secret } from '../../secret.js';
import type { JournalFile } from '../../store/journal.js';
import { failpoint } from '../failpoints.js';
import { transition } from '../machine.js';
import { backupRewritten, fsyncDirsOf, rewriteFile, type Rewritten } from '../rewrite.js';
import { machineState, type Execution, type StepHandler } from './execution.js';

/**
 * `regenerated`, files pending: write the new token into each config not yet written, in
 * parallel, then one fsync per directory, then journal which ones are done. Backups come
 * last: they are not needed for safety and must not lengthen the breakage window.
 */
export const writeStep: StepHandler<'write'> = async (ex, row) => {
  const { ctx, id, log, result } = ex;
  if (!ex.rediscovered) {
    await rediscoverFiles(ex);
    return 'next';
  }
  const newSecret = new Secret(row.newToken as string);
  const pending = row.files.filter((f) => !f.written && !f.unholdable);
  const rewritten: Rewritten[] = [];
  const outcomes = await Promise.all(
    pending.map((f) =>
      rewriteFile(ctx, f, {
        oldSecret: ex.oldSecret,
        oldFingerprint: row.oldFingerprint,
        newSecret,
        planned: ex.snapshots.get(f.path)?.snapshot,
        template: ex.snapshots.get(f.path)?.template,
        prepared: ex.prepared.get(f.path),
        onWarning: (m) => (result.warnings ??= []).push(m),
      }).then(
        (w) => {
          if (w) rewritten.push(w);
          failpoint('after-file-written');
          return null;
        },
        (e: unknown) => ({ file: f, error: e }),
      ),
    ),
  );
  const failures = outcomes.filter((o): o is { file: JournalFile; error: unknown } => o !== null);
  // A config that cannot hold this token never will: it is set aside (keeping the old token)
  // instead of being retried forever; every other failure leaves the row for the next command.
  const unholdable = failures.filter((x) => x.error instanceof RotatorError && x.error.code === 'E_CONFIG_CANNOT_HOLD');
  const failed = failures.filter((x) => !unholdable.includes(x));
  await fsyncDirsOf(rewritten);
  let s = machineState(row);
  for (const f of pending) if (!failures.some((x) => x.file === f)) s = transition(s, { type: 'file-written', path: f.path });
  for (const x of unholdable) {
    s = transition(s, { type: 'file-unholdable', path: x.file.path, reason: (x.error as RotatorError).message });
    log.warn({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, file: x.file.path, err: (x.error as RotatorError).message }, 'a config cannot hold the new token; it keeps the old one');
  }
  ctx.journal.setFiles(id, s.files, ctx.nowIso());
  failpoint('after-files-recorded');
  const live = [...(ex.liveTokens?.values() ?? [])].map((t) => t.secret.reveal());
  // set-token adopted a token made elsewhere: the old one was never seen to die.
  await backupRewritten(ctx, rewritten, [...live, newSecret.reveal()], { oldIsDead: row.source !== 'set-token' });
  if (!failed.length) return 'next';
  const first = failed[0] as { file: JournalFile; error: unknown };
  const msg = first.error instanceof RotatorError ? first.error.message : (first.error as Error).message;
  ctx.journal.noteAttempt(id, msg, ctx.nowIso());
  log.error({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, file: first.file.path, err: msg }, 'could not write a config; the rotation stays journaled');
  result.error = new RotatorError('E_CONFIG_UNWRITABLE', `Token ${row.oldFingerprint} was regenerated (new ${row.newFingerprint}) but ${first.file.path} could not be written: ${msg}`, {
    file: first.file.path,
    hint: `${first.error instanceof RotatorError && first.error.hint ? first.error.hint + ' ' : ''}The new token is journaled; fix the file, then run "mcp-token-rotator rotate --fingerprint ${row.oldFingerprint}" to finish writing it.`,
  });
  return 'stop';
};

/** Resuming after a crash: a config may have appeared or been restored meanwhile. */
async function rediscoverFiles(ex: Execution): Promise<void> {
  const { ctx, id } = ex;
  const row = ctx.journal.get(id);
  if (!row) return;
  const scan = await findTokens(ctx);
  ex.liveTokens = scan.tokens;
  const holding = scan.tokens.get(row.oldFingerprint);
  const formats = new Map(scan.configs.map((c) => [c.candidate.path, c.candidate.format as FileFormat]));
  const found = [...new Map((holding?.sites ?? []).map((s) => [s.path, { path: s.path, client: s.client, format: formats.get(s.path) ?? 'jsonc' }])).values()];
  const next = transition(machineState(row), { type: 'files-discovered', paths: found });
  if (next.files !== row.files) ctx.journal.setFiles(id, next.files, ctx.nowIso());
  ex.rediscovered = true;
}
