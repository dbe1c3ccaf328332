/**
 * Ctrl-C (SIGINT) during a rotation in the CLI (contract, CLI manners): never a silent exit,
 * and once the regenerate call has been sent, the configs are written before it exits.
 *
 * The story: outside a rotation's critical section, Ctrl-C exits at once (130) and says so.
 * From the regenerate call on (the old token may be dead from that moment) the first Ctrl-C
 * only stops what has not started: no retry waits, no next token; the writes (milliseconds)
 * finish, then the process exits 130. A second Ctrl-C exits at once and says what is pending
 * and the command that finishes it; the journal holds what is needed to finish.
 *
 * The daemon never installs the guard (it has its own signal handling), so there the
 * engine's calls below are no-ops but for the abort signal, which then never fires.
 */
import type { Context } from '../context.js';
import { escapeControls } from '../terminal.js';

/**
 * idle: nothing here can be lost; before-call: an intent is journaled but no call was sent
 * (it is cancelled); calling: the regenerate call may be out; writing: the new token is journaled.
 */
export type Stage = 'idle' | 'before-call' | 'calling' | 'writing';
export type InterruptAction = 'exit' | 'cancel-and-exit' | 'finish-first' | 'exit-pending';

/** Pure: what the nth Ctrl-C does in a stage. */
export function interruptAction(stage: Stage, count: number): InterruptAction {
  if (stage === 'idle') return 'exit';
  if (stage === 'before-call') return 'cancel-and-exit';
  return count <= 1 ? 'finish-first' : 'exit-pending';
}

export function finishCommandFor(fp: string): string {
  return `mcp-token-rotator rotate --fingerprint ${fp}`;
}

/** Pure: the message of a second Ctrl-C, from the journal row as it is now. */
export function pendingMessage(row: { oldFingerprint: string; step: string; newFingerprint: string | null; files: Array<{ path: string; written: boolean; unholdable?: string }> } | null, fp: string): string {
  const cmd = finishCommandFor(fp);
  if (!row || row.step === 'finished' || row.step === 'failed') return `Stopped. The rotation of token ${fp} had ended; run "mcp-token-rotator status" to check.`;
  if (row.step === 'intent') {
    return (
      `Stopped while the regenerate call for token ${fp} was out: Certorix may already have replaced the token, so the configs may hold a dead one.\n` +
      `Finish it now with "${cmd}": it repeats the call with the same Idempotency-Key (Certorix answers it again for 24 h) and writes every config.`
    );
  }
  const pending = row.files.filter((f) => !f.written && !f.unholdable).map((f) => f.path);
  return (
    `Stopped: token ${fp} was regenerated (new ${row.newFingerprint ?? '?'}; the old one is dead) and ${pending.length} config(s) still hold the dead token:\n` +
    pending.map((p) => `  ${p}\n`).join('') +
    `The new token is journaled. Finish it now with "${cmd}".`
  );
}

interface Critical {
  ctx: Context;
  id: number;
  fingerprint: string;
  stage: Stage;
}

let current: Critical | null = null;
let idleNote = 'Interrupted (Ctrl-C): no rotation was in progress; nothing was regenerated and no config was changed by this run.';

/** What a Ctrl-C outside any rotation says (the CLI waiting on the daemon says the daemon carries on). */
export function setIdleNote(text: string): void {
  idleNote = text;
}
let count = 0;
let installed = false;
const controller = new AbortController();

/** Aborted at the first Ctrl-C: retry loops stop waiting, no further token is started. */
export function interruptSignal(): AbortSignal {
  return controller.signal;
}

export function interrupted(): boolean {
  return count > 0;
}

/** The executor marks where a rotation stands (see the story above). */
export function markStage(ctx: Context, id: number, fingerprint: string, stage: Stage): void {
  current = stage === 'idle' ? null : { ctx, id, fingerprint, stage };
}

export function clearStage(): void {
  current = null;
}

/** CLI only. `write` and `exit` are injectable for tests; the default ones are stderr and process.exit. */
export function installInterruptGuard(io: { write?: (s: string) => void; exit?: (code: number) => void } = {}): void {
  if (installed) return;
  installed = true;
  const write = io.write ?? ((s: string) => process.stderr.write(escapeControls(s) + '\n'));
  const exit = io.exit ?? ((code: number) => process.exit(code));
  process.on('SIGINT', () => {
    count++;
    const stage = current?.stage ?? 'idle';
    const action = interruptAction(stage, count);
    if (action === 'exit') {
      write(idleNote);
      exit(130);
      return;
    }
    const c = current as Critical;
    if (action === 'cancel-and-exit') {
      // Nothing was sent: the journaled intent ends here, so no later command regenerates
      // a token the user stopped rotating. (Synchronous: better-sqlite3.)
      try {
        const row = c.ctx.journal.get(c.id);
        if (row && row.step === 'intent') c.ctx.journal.finish(c.id, 'failed', c.ctx.nowIso(), 'interrupted (Ctrl-C) before the regenerate call; nothing was sent');
      } catch {
        // the row stays: the next command replays it, which is safe (same Idempotency-Key)
      }
      write(`Interrupted (Ctrl-C) before token ${c.fingerprint} was regenerated: nothing was sent and no config was changed.`);
      exit(130);
      return;
    }
    if (action === 'finish-first') {
      controller.abort(new Error('interrupted (Ctrl-C)'));
      write(
        `Ctrl-C: finishing the rotation of token ${c.fingerprint} first: the regenerate call was sent, and stopping now could leave configs holding a dead token (writing takes a moment). ` +
          'No other token will be started. Press Ctrl-C again to stop at once.',
      );
      // Whatever the command returns, an interrupted run ends with 130.
      process.once('exit', () => {
        process.exitCode = 130;
      });
      return;
    }
    let row = null;
    try {
      row = c.ctx.journal.get(c.id);
    } catch {
      // the store is busy or closed: the generic message still names the command
    }
    write(pendingMessage(row, c.fingerprint));
    exit(130);
  });
}
