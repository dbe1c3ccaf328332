import type { Context } from '../context.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import type { Trigger } from './checks.js';

/** What a rotation-like operation returns, as far as the daemon's log cares. */
export interface LoggedRotation {
  fingerprint: string;
  newFingerprint: string | null;
  status: string;
  files: Array<{ path: string }>;
  restart?: string[];
  error?: { message: string };
}

/**
 * The daemon's shared parts, handed to each of its modules (dispatch, rescan, token checks,
 * scheduled rotation, and whatever a later feature adds as a DaemonService).
 */
export interface DaemonCore {
  readonly ctx: Context;
  readonly log: Logger;
  /** True from the first stop signal on: no new work is accepted. */
  readonly stopping: boolean;
  /** Runs fn after everything queued before it (the daemon writes one thing at a time); errors are the caller's. */
  enqueue<T>(fn: () => Promise<T>): Promise<T>;
  /** The queue's tail, for a stop that waits for the work in progress. */
  idle(): Promise<unknown>;
  /** A desktop notification, unless the settings say `notify: false`. */
  notify(title: string, body: string): void;
  /** Rescan the configs, record, heal (call from inside the queue). */
  rescan(why: string, changed?: string[], opts?: { askNew?: boolean }): Promise<void>;
  /** Live (not retired) tokens seen in configs, by fingerprint: in memory only. */
  liveTokens(): ReadonlyMap<string, Secret>;
  /** Ask for a token check (enqueued). */
  check(trigger: Trigger): Promise<void>;
  /** Runs a mutating operation in the queue, logs its rotations, rescans after it. */
  mutate<T extends { rotations: LoggedRotation[] }>(why: string, fn: () => Promise<T>): Promise<T>;
}

/** A part of the daemon started after the first scan, stopped in reverse order, reloaded on SIGHUP. */
export interface DaemonService {
  name: string;
  stop(): Promise<void> | void;
  reload?(): Promise<void> | void;
}

/** One step of the start-up sequence: starts a service (or does a one-off job). */
export type StartStep = (core: DaemonCore) => Promise<DaemonService | void>;

export function logRotations(log: Logger, rs: LoggedRotation[]): void {
  for (const r of rs) {
    // With the restart advice: whoever reads the log must know which clients need it (guarantee 8).
    if (r.status === 'rotated') log.info({ fingerprint: r.fingerprint, newFingerprint: r.newFingerprint, files: r.files.map((f) => f.path), restart: r.restart ?? [] }, `rotated token ${r.fingerprint} -> ${r.newFingerprint}${r.restart?.length ? `; to pick up the new token: ${r.restart.join(' ')}` : ''}`);
    else if (r.status === 'already-rotated') log.info({ fingerprint: r.fingerprint, newFingerprint: r.newFingerprint }, `token ${r.fingerprint} was already rotated to ${r.newFingerprint}`);
    else log.error({ fingerprint: r.fingerprint, status: r.status, err: r.error?.message }, `rotation of token ${r.fingerprint} did not finish`);
  }
}

/** A promise queue: each job starts after the previous one settled; `settled` is told after each job. */
export function createQueue(settled?: () => void): { enqueue<T>(fn: () => Promise<T>): Promise<T>; idle(): Promise<unknown> } {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    enqueue<T>(fn: () => Promise<T>): Promise<T> {
      const next = queue.then(fn, fn);
      queue = next.catch(() => undefined);
      if (settled) void queue.then(settled);
      return next;
    },
    idle: () => queue,
  };
}
