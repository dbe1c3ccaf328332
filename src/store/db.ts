import Database from 'better-sqlite3';
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { MIGRATIONS } from './migrations.js';

export type DB = Database.Database;

/**
 * The state directory is 0700 and every file in it 0600, whatever the umask: it holds the
 * journal of an unfinished rotation, which is the one place a live token may rest.
 */
export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

export function tightenStateFiles(dir: string): void {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    try {
      // lstat: a symlink placed here must not make us chmod whatever it points at.
      const st = lstatSync(p);
      if (st.isSymbolicLink() || st.isSocket()) continue;
      const want = st.isDirectory() ? 0o700 : 0o600;
      if ((st.mode & 0o777) !== want) chmodSync(p, want);
      if (st.isDirectory()) tightenStateFiles(p);
    } catch {
      // A file removed between readdir and stat (the WAL after a checkpoint) needs nothing.
    }
  }
}

/** How long a statement waits for another connection's lock (a checkpoint sets its own). */
const BUSY_TIMEOUT_MS = 10_000;

export function openDatabase(file: string): DB {
  ensureStateDir(path.dirname(file));
  // Whatever an older version, a restore or the user left here is narrowed too.
  tightenStateFiles(path.dirname(file));
  // Create it 0600 before SQLite does; SQLite gives its -wal and -shm files the same mode.
  closeSync(openSync(file, 'a', 0o600));
  const st = statSync(file);
  if ((st.mode & 0o777) !== 0o600) chmodSync(file, 0o600);
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  db.pragma('journal_mode = WAL');
  // FULL: a committed journal step survives power loss, which the rotation guarantees need.
  db.pragma('synchronous = FULL');
  // Deleted content (an erased journal token) is overwritten with zeros, not left in free pages.
  db.pragma('secure_delete = ON');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

export function migrate(db: DB): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v];
    if (sql === undefined) break;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

export interface CheckpointOutcome {
  /** True when the WAL was emptied: every frame copied into the main file and the file truncated. */
  done: boolean;
  /** SQLite's own answer from the last try: 1 when another connection kept it from finishing. */
  busy: number;
  /** Frames in the WAL, and how many of them reached the main file (both 0 after a truncation). */
  log: number;
  checkpointed: number;
  attempts: number;
}

export interface CheckpointOptions {
  /** How many tries before giving up (bounded: the daemon's event loop waits meanwhile). */
  attempts?: number;
  /** How long each try waits (SQLite's busy handler) for other connections to let go. */
  waitMs?: number;
}

const pause = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * Moves everything from the WAL into the main file and truncates the WAL, so that a
 * token erased from the journal is not left behind in an old WAL frame. secure_delete has
 * already zeroed it in the page images; this makes those images the only ones left.
 *
 * Another connection (the daemon, a concurrent `status`) that is inside a read transaction
 * on an older snapshot keeps SQLite from copying the newest frames or from truncating: it
 * then answers busy = 1 and the WAL still holds the token. So the answer is checked and the
 * checkpoint retried, a bounded number of times; the caller says so when it never finished.
 */
export function checkpoint(db: DB, opts: CheckpointOptions = {}): CheckpointOutcome {
  const attempts = Math.max(1, opts.attempts ?? 8);
  const waitMs = opts.waitMs ?? 1_000;
  let last: CheckpointOutcome = { done: false, busy: 1, log: -1, checkpointed: -1, attempts: 0 };
  db.pragma(`busy_timeout = ${waitMs}`);
  try {
    for (let i = 1; i <= attempts; i++) {
      const row = (db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>)[0];
      const busy = row?.busy ?? 1;
      const log = row?.log ?? -1;
      const checkpointed = row?.checkpointed ?? -1;
      // TRUNCATE reports 0 / 0 once the WAL is empty; log === checkpointed with busy 0 means
      // every frame is in the main file and the log was reset.
      last = { done: busy === 0 && log === checkpointed, busy, log, checkpointed, attempts: i };
      if (last.done) return last;
      if (i < attempts) pause(Math.min(50 * i, 250));
    }
    return last;
  } finally {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
}
