import Database from 'better-sqlite3';
import { RotatorError } from './errors.js';
import { ensureStateDir } from './store/db.js';
import path from 'node:path';
import { chmodSync } from 'node:fs';

/**
 * A cross-process lock held as an exclusive SQLite transaction on a small lock file.
 * The OS releases it when the holder dies, even by SIGKILL, so there is never a stale
 * lock to clean up (unlike pid files or lock directories).
 */
export class FileLock {
  #db: Database.Database | undefined;
  constructor(readonly file: string) {}

  tryAcquire(): boolean {
    if (this.#db) return true;
    ensureStateDir(path.dirname(this.file));
    const db = new Database(this.file, { timeout: 0 });
    try {
      chmodSync(this.file, 0o600);
      db.pragma('journal_mode = DELETE');
      db.exec('BEGIN EXCLUSIVE');
      this.#db = db;
      return true;
    } catch (e) {
      db.close();
      if ((e as { code?: string }).code === 'SQLITE_BUSY' || (e as { code?: string }).code === 'SQLITE_LOCKED') return false;
      throw e;
    }
  }

  async acquire(opts: { timeoutMs: number; what: string }): Promise<void> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      if (this.tryAcquire()) return;
      if (Date.now() >= deadline) {
        throw new RotatorError('E_LOCKED', `Another mcp-token-rotator process is ${opts.what}.`, {
          hint: 'Wait for it to finish (see "mcp-token-rotator status"), then run the command again.',
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get held(): boolean {
    return this.#db !== undefined;
  }

  release(): void {
    const db = this.#db;
    this.#db = undefined;
    if (!db) return;
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
  }
}
