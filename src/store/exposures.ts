import type { Store } from './store.js';

/**
 * Where a token has been exposed (migration 4): a git-tracked file (the token is in its
 * history) or a file other users could read, while the token was in it. Recorded by doctor
 * and by `broker enable` before it takes the token out of the file; doctor reports them
 * until the token is rotated. Fingerprints and paths only.
 */
export type ExposureKind = 'git' | 'readable';

export interface ExposureRow {
  fingerprint: string;
  path: string;
  kind: ExposureKind;
  /** git: the repository's root; readable: the mode (octal) and who could read it. */
  detail: string;
  firstSeenAt: string;
  lastSeenAt: string;
}

const COLS = 'fingerprint, path, kind, detail, first_seen_at AS firstSeenAt, last_seen_at AS lastSeenAt';

export class Exposures {
  constructor(private readonly store: Store) {}

  record(e: { fingerprint: string; path: string; kind: ExposureKind; detail: string }, now: string): void {
    this.store.db
      .prepare(
        `INSERT INTO exposures(fingerprint, path, kind, detail, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(fingerprint, path, kind) DO UPDATE SET detail = excluded.detail, last_seen_at = excluded.last_seen_at`,
      )
      .run(e.fingerprint, e.path, e.kind, e.detail, now, now);
  }

  list(fingerprint?: string): ExposureRow[] {
    return fingerprint === undefined
      ? (this.store.db.prepare(`SELECT ${COLS} FROM exposures ORDER BY fingerprint, path, kind`).all() as ExposureRow[])
      : (this.store.db.prepare(`SELECT ${COLS} FROM exposures WHERE fingerprint = ? ORDER BY path, kind`).all(fingerprint) as ExposureRow[]);
  }

  /** A rotated (retired) token's exposures no longer matter: the exposed value is dead. */
  forget(fingerprint: string): void {
    this.store.db.prepare('DELETE FROM exposures WHERE fingerprint = ?').run(fingerprint);
  }
}
