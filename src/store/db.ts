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

export function openDatabase(file: string): DB {
  ensureStateDir(path.dirname(file));
  // Whatever an older version, a restore or the user left here is narrowed too.
  tightenStateFiles(path.dirname(file));
  // Create it 0600 before SQLite does; SQLite gives its -wal and -shm files the same mode.
  closeSync(openSync(file, 'a', 0o600));
  const st = statSync(file);
  if ((st.mode & 0o777) !== 0o600) chmodSync(file, 0o600);
  const db = new Database(file, { timeout: 10_000 });
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

/**
 * Moves everything from the WAL into the main file and truncates the WAL, so that a
 * token erased from the journal is not left behind in an old WAL frame.
 */
export function checkpoint(db: DB): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}
