/**
 * The rotation as a journaled state machine, after AWS Secrets Manager's
 * createSecret / setSecret / testSecret / finishSecret. This module is pure: given the
 * journal row it says what to do next, and given the outcome of doing it, what the new
 * step is. run.ts performs the I/O and records each transition before the next action.
 *
 *   intent ──regenerate ok──▶ regenerated ──all files written──▶ (verify) ──ok──▶ verified ──▶ finished
 *     │                          │   ▲ write one file (files[i].written = true)
 *     │ 401/403/422              └───┘
 *     ▼
 *   failed   (nothing was written; the old token is untouched or already known dead)
 *
 * A config that cannot hold the new token (a tab, characters its format cannot carry) is
 * marked unholdable and keeps the old one; the others are written and the rotation finishes.
 * If no config can hold it, `abandon` ends the row as `failed`: replaying could never succeed,
 * and a journal that keeps both tokens forever is worse than a token no file can carry.
 *
 * A transient failure leaves the step where it is: the next start of any command replays
 * it (the regenerate call with the same Idempotency-Key, or the files not yet written).
 *
 * A provider without idempotency (GitLab, Cloudflare: `idempotent: false`) is the exception
 * to replaying: a repeated rotate call would do harm (GitLab's repeat with the revoked old
 * token revokes the new one). Its call is journaled as `calling` before it is sent; an answer
 * recorded moves it on as usual, but a `calling` row found later (the answer was lost: a
 * timeout, a reset, a crash) is never called again: `lose` ends it as `lost`, the token is
 * marked invalid and the user is sent to the provider's token page and `set-token`. Only a
 * call that surely never left (no connection made: `notSent`) goes back to `intent`.
 *
 *   intent ──call-sent──▶ calling ──regenerated──▶ regenerated ...
 *                            │ answer lost (transient, or found on resume)
 *                            ▼
 *                          lost
 *
 * Broker mode adds two actions when the token has slots (running wrappers follow it):
 * `announce` before the regenerate call (wrappers hold new requests), and `store` as the
 * first thing after the new token is journaled, before any config write or other API call
 * (the token store gets the new token and wrappers swap their server). Both are idempotent
 * and kept in memory only: a resumed rotation simply does them again.
 */
import type { JournalStep, JournalFile } from '../store/journal.js';

export interface MachineState {
  step: JournalStep;
  files: JournalFile[];
  hasNewToken: boolean;
  /** Broker steps still to do in this run (absent: the token has no slots). */
  broker?: { announce: boolean; store: boolean };
  /** False for a provider whose rotate call has no idempotency key (absent: true). */
  idempotent?: boolean;
}

export type Action =
  | { type: 'announce' }
  | { type: 'store' }
  | { type: 'regenerate' }
  | { type: 'write'; files: string[] }
  | { type: 'verify' }
  | { type: 'finish' }
  | { type: 'abandon' }
  | { type: 'lose' }
  | { type: 'none' };

export function nextAction(s: MachineState): Action {
  switch (s.step) {
    case 'intent':
      return s.broker?.announce ? { type: 'announce' } : { type: 'regenerate' };
    case 'calling':
      // A call without idempotency was sent and no answer recorded: never sent again.
      return { type: 'lose' };
    case 'regenerated': {
      if (!s.hasNewToken) return { type: 'regenerate' }; // cannot happen after a durable commit; replay is the safe answer
      if (s.broker?.store) return { type: 'store' };
      const pending = s.files.filter((f) => !f.written && !f.unholdable).map((f) => f.path);
      if (pending.length) return { type: 'write', files: pending };
      // Every config refused the token and no broker slot holds it: nothing holds it, so
      // there is nothing to verify. (With slots, the store holds it and wrappers use it.)
      if (!s.broker && s.files.length && s.files.every((f) => f.unholdable)) return { type: 'abandon' };
      return { type: 'verify' };
    }
    case 'verified':
      return { type: 'finish' };
    case 'finished':
    case 'failed':
    case 'lost':
      return { type: 'none' };
  }
}

/**
 * Whether a failed regenerate call may be sent again in this run. With an idempotency key,
 * any transient failure may (the key makes the repeat safe); without one, only a call that
 * surely never reached the server.
 */
export function mayRetryRegenerate(idempotent: boolean, failure: { transient: boolean; notSent: boolean }): boolean {
  return failure.transient && (idempotent || failure.notSent);
}

export type Outcome =
  | { type: 'call-sent' } // a call without idempotency is about to leave: journaled first
  | { type: 'regenerated' }
  | { type: 'regenerate-refused' } // 401 / 403 / 422: permanent, nothing happened that we know of
  | { type: 'transient'; notSent?: boolean } // try again later, same step (without idempotency: lost, unless it never left)
  | { type: 'lost' }
  | { type: 'file-written'; path: string }
  | { type: 'file-unholdable'; path: string; reason: string }
  | { type: 'abandoned' }
  | { type: 'files-discovered'; paths: Array<{ path: string; client: string; format: string }> }
  | { type: 'verified' }
  | { type: 'finished' };

export function transition(s: MachineState, o: Outcome): MachineState {
  switch (o.type) {
    case 'call-sent':
      return s.step === 'intent' && s.idempotent === false ? { ...s, step: 'calling' } : s;
    case 'regenerated':
      return s.step === 'intent' || s.step === 'calling' ? { ...s, step: 'regenerated', hasNewToken: true } : s;
    case 'regenerate-refused':
      return s.step === 'intent' || s.step === 'calling' ? { ...s, step: 'failed' } : s;
    case 'transient':
      if (s.step !== 'calling') return s;
      return o.notSent ? { ...s, step: 'intent' } : { ...s, step: 'lost' };
    case 'lost':
      return s.step === 'calling' ? { ...s, step: 'lost' } : s;
    case 'file-written':
      return { ...s, files: s.files.map((f) => (f.path === o.path ? { ...f, written: true } : f)) };
    case 'file-unholdable':
      return { ...s, files: s.files.map((f) => (f.path === o.path && !f.written ? { ...f, unholdable: o.reason } : f)) };
    case 'abandoned':
      return s.step === 'regenerated' && s.files.every((f) => f.unholdable) ? { ...s, step: 'failed' } : s;
    case 'files-discovered': {
      const known = new Set(s.files.map((f) => f.path));
      const added = o.paths.filter((p) => !known.has(p.path)).map((p) => ({ ...p, written: false }));
      return added.length ? { ...s, files: [...s.files, ...added] } : s;
    }
    case 'verified':
      return s.step === 'regenerated' && s.files.every((f) => f.written || f.unholdable) ? { ...s, step: 'verified' } : s;
    case 'finished':
      return s.step === 'verified' ? { ...s, step: 'finished' } : s;
  }
}
