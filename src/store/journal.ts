import type { Statement } from 'better-sqlite3';
import type { Store } from './store.js';

/**
 * The rotation journal: one row per rotation, advanced step by step. The only table
 * that may hold a live token value, and only until the rotation finishes.
 */
export type JournalStep = 'intent' | 'calling' | 'regenerated' | 'verified' | 'finished' | 'failed' | 'lost';

export interface JournalFile {
  path: string;
  client: string;
  format: string;
  written: boolean;
  /** Why this config cannot hold the new token (its characters); it keeps the old one. */
  unholdable?: string;
}

export interface JournalRow {
  id: number;
  oldFingerprint: string;
  provider: string;
  /** The API base the rotation calls (the token's entry's own, e.g. GitLab's); null: the provider's. */
  apiUrl: string | null;
  source: string;
  idempotencyKey: string;
  step: JournalStep;
  oldToken: string | null;
  newToken: string | null;
  newFingerprint: string | null;
  newTokenId: string | null;
  newCreatedAt: string | null;
  files: JournalFile[];
  attempts: number;
  error: string | null;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

type RawRow = Omit<JournalRow, 'files'> & { files: string };

const COLS = `id, old_fingerprint AS oldFingerprint, provider, api_url AS apiUrl, source, idempotency_key AS idempotencyKey, step,
  old_token AS oldToken, new_token AS newToken, new_fingerprint AS newFingerprint, new_token_id AS newTokenId,
  new_created_at AS newCreatedAt, files, attempts, error, started_at AS startedAt, updated_at AS updatedAt, finished_at AS finishedAt`;

function decode(r: RawRow | undefined): JournalRow | null {
  return r ? { ...r, files: JSON.parse(r.files) as JournalFile[] } : null;
}

const SQL = {
  get: `SELECT ${COLS} FROM rotations WHERE id = ?`,
  recordNewToken: `UPDATE rotations SET step = 'regenerated', new_token = ?, new_fingerprint = ?, new_token_id = ?, new_created_at = ?,
           error = NULL, updated_at = ? WHERE id = ?`,
  setFiles: 'UPDATE rotations SET files = ?, updated_at = ? WHERE id = ?',
  setStep: 'UPDATE rotations SET step = ?, error = ?, updated_at = ? WHERE id = ?',
} as const;

export class Journal {
  // Prepared once per connection: compiling a statement costs about a millisecond cold,
  // which matters between the regenerate response and the config writes.
  readonly #stmts = new Map<string, Statement>();

  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  private stmt(sql: string): Statement {
    let st = this.#stmts.get(sql);
    if (!st) this.#stmts.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Prepares the statements a rotation runs right after the regenerate response. */
  prepareStatements(): void {
    for (const sql of Object.values(SQL)) this.stmt(sql);
  }

  open(): JournalRow[] {
    const rows = this.db.prepare(`SELECT ${COLS} FROM rotations WHERE finished_at IS NULL ORDER BY id`).all() as RawRow[];
    return rows.map((r) => decode(r)!);
  }

  openFingerprints(): Set<string> {
    return new Set(this.open().map((r) => r.oldFingerprint));
  }

  get(id: number): JournalRow | null {
    return decode(this.stmt(SQL.get).get(id) as RawRow | undefined);
  }

  /** Step 1: the intent, durable before the API is called. */
  begin(r: { oldFingerprint: string; provider: string; apiUrl?: string | null; source: string; idempotencyKey: string; oldToken: string; files: JournalFile[]; now: string }): number {
    const res = this.db
      .prepare(
        `INSERT INTO rotations(old_fingerprint, provider, api_url, source, idempotency_key, step, old_token, files, started_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'intent', ?, ?, ?, ?)`,
      )
      .run(r.oldFingerprint, r.provider, r.apiUrl ?? null, r.source, r.idempotencyKey, r.oldToken, JSON.stringify(r.files), r.now, r.now);
    return Number(res.lastInsertRowid);
  }

  noteAttempt(id: number, error: string | null, now: string): void {
    this.db.prepare('UPDATE rotations SET attempts = attempts + 1, error = ?, updated_at = ? WHERE id = ?').run(error, now, id);
  }

  /** Step 2: the new token, durable before the first config is touched. */
  recordNewToken(id: number, t: { token: string; fingerprint: string; tokenId: string; createdAt: string | null; now: string }): void {
    this.stmt(SQL.recordNewToken).run(t.token, t.fingerprint, t.tokenId, t.createdAt, t.now, id);
  }

  setFiles(id: number, files: JournalFile[], now: string): void {
    this.stmt(SQL.setFiles).run(JSON.stringify(files), now, id);
  }

  setStep(id: number, step: JournalStep, now: string, error: string | null = null): void {
    this.stmt(SQL.setStep).run(step, error, now, id);
  }

  /**
   * Ends a rotation: erases both token values (secure_delete zeroes them in the file) and
   * stamps it finished. Run inside the caller's transaction with the token bookkeeping.
   */
  finish(id: number, step: 'finished' | 'failed' | 'lost', now: string, error: string | null = null): void {
    this.db
      .prepare(
        `UPDATE rotations SET step = ?, old_token = NULL, new_token = NULL, error = ?, updated_at = ?, finished_at = ? WHERE id = ?`,
      )
      .run(step, error, now, now, id);
  }
}
