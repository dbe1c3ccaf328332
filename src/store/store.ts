import type { DB } from './db.js';
import { checkpoint, openDatabase, type CheckpointOptions, type CheckpointOutcome } from './db.js';

export type TokenState = 'active' | 'invalid' | 'retired';
export type EventSource = 'manual' | 'schedule' | 'revoke-now' | 'watch' | 'set-token';

export interface TokenRow {
  fingerprint: string;
  provider: string;
  account: string | null;
  tokenId: string | null;
  role: string | null;
  createdAt: string | null;
  firstSeenAt: string;
  lastSeenAt: string | null;
  lastCheckedAt: string | null;
  state: TokenState;
  retiredAt: string | null;
  replacedBy: string | null;
  lastWarnedAt: string | null;
  lastHeadsUpAt: string | null;
  /** Retired by set-token while the API still accepted it: when it last did (null: not known alive). */
  stillAliveAt: string | null;
  /** ISO 8601 expiry as the provider's API told it; null: does not expire, or not told. */
  expiresAt: string | null;
  /** The API base the token's entry names for itself (GitLab); null: the provider's own. */
  apiUrl: string | null;
  /** GitHub: 'classic' or 'fine-grained' (doctor); null elsewhere. */
  tokenKind: string | null;
}

export interface LocationRow {
  path: string;
  keyPath: string;
  fingerprint: string;
  client: string;
  server: string;
  kind: string;
}

export interface ConfigRow {
  path: string;
  client: string;
  format: string;
  status: 'ok' | 'error';
  error: string | null;
  scannedAt: string;
}

export interface EventRow {
  id: number;
  at: string;
  type: string;
  fingerprint: string | null;
  newFingerprint: string | null;
  source: EventSource | null;
  files: string[];
  detail: string | null;
}

export type NewEvent = Omit<EventRow, 'id'>;

export interface TokenInfoUpdate {
  role?: string | null;
  account?: string | null;
  tokenId?: string | null;
  createdAt?: string | null;
  checkedAt: string;
  state?: TokenState;
  /** Set when present (null: does not expire); left alone when absent (the API did not say). */
  expiresAt?: string | null;
  tokenKind?: string | null;
}

const TOKEN_COLS = `fingerprint, provider, account, token_id AS tokenId, role, created_at AS createdAt,
  first_seen_at AS firstSeenAt, last_seen_at AS lastSeenAt, last_checked_at AS lastCheckedAt, state,
  retired_at AS retiredAt, replaced_by AS replacedBy, last_warned_at AS lastWarnedAt, last_headsup_at AS lastHeadsUpAt, still_alive_at AS stillAliveAt,
  expires_at AS expiresAt, api_url AS apiUrl, token_kind AS tokenKind`;

/** Typed queries over the SQLite file. No method ever receives a token value except the journal's. */
export class Store {
  readonly db: DB;
  readonly file: string;

  constructor(file: string) {
    this.file = file;
    this.db = openDatabase(file);
    // A process killed between erasing a journal token and checkpointing leaves the old
    // page images in the WAL; folding it in at every open makes sure they do not stay.
    // Kept short: an open must not stall behind another process's long read.
    checkpoint(this.db, { attempts: 2, waitMs: 500 });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * BEGIN IMMEDIATE: the write lock is taken at the start, where the busy timeout waits for
   * another process (daemon and CLI). A deferred transaction that reads first and then
   * writes fails at once with "database is locked" if another connection wrote in between
   * (SQLite cannot upgrade a stale read snapshot, so it does not wait).
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** See db.ts: the outcome says whether the WAL really holds nothing of the journal any more. */
  checkpoint(opts?: CheckpointOptions): CheckpointOutcome {
    return checkpoint(this.db, opts);
  }

  // ---- meta
  getMeta(key: string): string | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // ---- tokens
  getToken(fp: string): TokenRow | null {
    return (this.db.prepare(`SELECT ${TOKEN_COLS} FROM tokens WHERE fingerprint = ?`).get(fp) as TokenRow | undefined) ?? null;
  }

  listTokens(): TokenRow[] {
    return this.db.prepare(`SELECT ${TOKEN_COLS} FROM tokens ORDER BY first_seen_at, fingerprint`).all() as TokenRow[];
  }

  /**
   * Records a token seen in a config; first sight sets first_seen_at. Returns true when it
   * is new. The provider and API base are the entry's (attribution by entry), as seen now.
   */
  recordSeen(fp: string, provider: string, now: string, apiUrl: string | null = null): boolean {
    const r = this.db
      .prepare(`INSERT INTO tokens(fingerprint, provider, first_seen_at, last_seen_at, api_url) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(fingerprint) DO UPDATE SET last_seen_at = excluded.last_seen_at, provider = excluded.provider, api_url = excluded.api_url`)
      .run(fp, provider, now, now, apiUrl);
    return r.changes > 0 && this.db.prepare('SELECT first_seen_at = ? AS fresh FROM tokens WHERE fingerprint = ?').pluck().get(now, fp) === 1;
  }

  updateTokenInfo(fp: string, u: TokenInfoUpdate): void {
    this.db
      .prepare(
        `UPDATE tokens SET
          role = COALESCE(@role, role), account = COALESCE(@account, account), token_id = COALESCE(@tokenId, token_id),
          created_at = COALESCE(@createdAt, created_at), last_checked_at = @checkedAt,
          state = CASE WHEN state = 'retired' THEN state ELSE COALESCE(@state, state) END,
          expires_at = CASE WHEN @setExpiry THEN @expiresAt ELSE expires_at END,
          token_kind = COALESCE(@tokenKind, token_kind)
        WHERE fingerprint = @fp`,
      )
      .run({
        fp,
        setExpiry: u.expiresAt !== undefined ? 1 : 0,
        expiresAt: u.expiresAt ?? null,
        tokenKind: u.tokenKind ?? null,
        role: u.role ?? null,
        account: u.account ?? null,
        tokenId: u.tokenId ?? null,
        createdAt: u.createdAt ?? null,
        checkedAt: u.checkedAt,
        state: u.state ?? null,
      });
  }

  setTokenState(fp: string, state: TokenState): void {
    this.db.prepare('UPDATE tokens SET state = ? WHERE fingerprint = ?').run(state, fp);
  }

  /** A newly minted token inherits what we knew of its predecessor (account, role). */
  /**
   * `noCreationDate`: the provider's API never tells one (GitHub, Cloudflare), so the age
   * stays unknown rather than counted from now.
   */
  recordSuccessor(oldFp: string, newFp: string, info: { tokenId?: string | null; createdAt?: string | null; expiresAt?: string | null; noCreationDate?: boolean }, now: string): void {
    const old = this.getToken(oldFp);
    this.db
      .prepare(
        `INSERT INTO tokens(fingerprint, provider, account, token_id, role, created_at, first_seen_at, last_seen_at, last_checked_at, state, expires_at, api_url)
         VALUES (@fp, @provider, @account, @tokenId, @role, @createdAt, @now, @now, @now, 'active', @expiresAt, @apiUrl)
         ON CONFLICT(fingerprint) DO UPDATE SET state = 'active', token_id = COALESCE(excluded.token_id, token_id),
           created_at = COALESCE(excluded.created_at, created_at), account = COALESCE(account, excluded.account),
           role = COALESCE(role, excluded.role), last_checked_at = excluded.last_checked_at,
           provider = excluded.provider, api_url = COALESCE(api_url, excluded.api_url),
           expires_at = CASE WHEN @setExpiry THEN excluded.expires_at ELSE expires_at END`,
      )
      .run({
        fp: newFp,
        provider: old?.provider ?? 'certorix',
        account: old?.account ?? null,
        tokenId: info.tokenId ?? null,
        role: old?.role ?? null,
        createdAt: info.createdAt ?? (info.noCreationDate ? null : now),
        setExpiry: info.expiresAt !== undefined ? 1 : 0,
        expiresAt: info.expiresAt ?? null,
        apiUrl: old?.apiUrl ?? null,
        now,
      });
    this.db
      .prepare(`UPDATE tokens SET state = 'retired', retired_at = ?, replaced_by = ? WHERE fingerprint = ?`)
      .run(now, newFp, oldFp);
    // Locations follow the token: the configs now hold the successor.
    this.db.prepare('UPDATE locations SET fingerprint = ? WHERE fingerprint = ?').run(newFp, oldFp);
  }

  /** set-token left this token alive (at: when the API last accepted it), or it is known dead now (null). */
  markStillAlive(fp: string, at: string | null): void {
    this.db.prepare('UPDATE tokens SET still_alive_at = ? WHERE fingerprint = ?').run(at, fp);
  }

  /** Replaced tokens the API still accepted when last asked: the user has to revoke them. */
  listStillAlive(): TokenRow[] {
    return this.db.prepare(`SELECT ${TOKEN_COLS} FROM tokens WHERE state = 'retired' AND still_alive_at IS NOT NULL ORDER BY retired_at, fingerprint`).all() as TokenRow[];
  }

  markWarned(fp: string, kind: 'warn' | 'headsup', at: string): void {
    const col = kind === 'warn' ? 'last_warned_at' : 'last_headsup_at';
    this.db.prepare(`UPDATE tokens SET ${col} = ? WHERE fingerprint = ?`).run(at, fp);
  }

  /** Follows replaced_by links from a retired fingerprint to the live one, if any. */
  currentSuccessor(fp: string): string | null {
    let cur = fp;
    for (let i = 0; i < 1000; i++) {
      const row = this.db.prepare('SELECT replaced_by FROM tokens WHERE fingerprint = ?').pluck().get(cur) as string | null | undefined;
      if (!row) return cur === fp ? null : cur;
      cur = row;
    }
    return null;
  }

  /** The token's lineage: itself, what it replaced (back to the first) and what replaced it. */
  lineage(fp: string): string[] {
    return this.db
      .prepare(
        `WITH RECURSIVE
           up(fp) AS (SELECT ? UNION SELECT t.fingerprint FROM tokens t JOIN up ON t.replaced_by = up.fp),
           down(fp) AS (SELECT ? UNION SELECT t.replaced_by FROM tokens t JOIN down ON t.fingerprint = down.fp WHERE t.replaced_by IS NOT NULL)
         SELECT fp FROM up UNION SELECT fp FROM down`,
      )
      .pluck()
      .all(fp, fp) as string[];
  }

  /**
   * Where a token's lineage lived, as recorded when it was rotated: the files of every
   * rotation, adoption and heal of any token in the lineage, and of every journaled rotation
   * (finished or not) of one. Heal writes only there.
   */
  lineagePaths(fp: string): Set<string> {
    const fps = this.lineage(fp);
    const marks = fps.map(() => '?').join(', ');
    const out = new Set<string>();
    const events = this.db
      .prepare(`SELECT files FROM events WHERE type IN ('rotated', 'adopted', 'healed') AND (fingerprint IN (${marks}) OR new_fingerprint IN (${marks}))`)
      .pluck()
      .all(...fps, ...fps) as string[];
    for (const f of events) for (const p of JSON.parse(f) as string[]) out.add(p);
    const journal = this.db
      .prepare(`SELECT files FROM rotations WHERE old_fingerprint IN (${marks}) OR new_fingerprint IN (${marks})`)
      .pluck()
      .all(...fps, ...fps) as string[];
    for (const f of journal) for (const j of JSON.parse(f) as Array<{ path: string }>) out.add(j.path);
    return out;
  }

  // ---- configs and locations
  /** Replaces everything recorded for one config in one transaction. */
  recordConfig(cfg: Omit<ConfigRow, 'scannedAt'>, locations: Omit<LocationRow, 'path'>[], now: string): void {
    this.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO configs(path, client, format, status, error, scanned_at) VALUES (@path, @client, @format, @status, @error, @now)
           ON CONFLICT(path) DO UPDATE SET client = excluded.client, format = excluded.format, status = excluded.status,
             error = excluded.error, scanned_at = excluded.scanned_at`,
        )
        .run({ ...cfg, now });
      // A config we could not parse keeps its last known locations: the tokens are still there.
      if (cfg.status === 'error') return;
      this.db.prepare('DELETE FROM locations WHERE path = ?').run(cfg.path);
      const ins = this.db.prepare(
        'INSERT OR REPLACE INTO locations(path, key_path, fingerprint, client, server, kind, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      for (const l of locations) ins.run(cfg.path, l.keyPath, l.fingerprint, l.client, l.server, l.kind, now);
    });
  }

  /** A config that no longer exists holds nothing. */
  forgetConfig(path: string): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM locations WHERE path = ?').run(path);
      this.db.prepare('DELETE FROM configs WHERE path = ?').run(path);
    });
  }

  listConfigs(): ConfigRow[] {
    return this.db.prepare('SELECT path, client, format, status, error, scanned_at AS scannedAt FROM configs ORDER BY path').all() as ConfigRow[];
  }

  listLocations(fp?: string): LocationRow[] {
    const sql = 'SELECT path, key_path AS keyPath, fingerprint, client, server, kind FROM locations';
    return (fp ? this.db.prepare(`${sql} WHERE fingerprint = ? ORDER BY path, key_path`).all(fp) : this.db.prepare(`${sql} ORDER BY path, key_path`).all()) as LocationRow[];
  }

  // ---- events
  addEvent(e: NewEvent): number {
    const r = this.db
      .prepare('INSERT INTO events(at, type, fingerprint, new_fingerprint, source, files, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(e.at, e.type, e.fingerprint, e.newFingerprint, e.source, JSON.stringify(e.files), e.detail);
    return Number(r.lastInsertRowid);
  }

  /** How many events of each type, and the newest one's time (metrics). Types with none are absent. */
  eventStats(types: string[]): Map<string, { count: number; lastAt: string }> {
    const out = new Map<string, { count: number; lastAt: string }>();
    if (!types.length) return out;
    const rows = this.db
      .prepare(`SELECT type, COUNT(*) AS count, MAX(at) AS lastAt FROM events WHERE type IN (${types.map(() => '?').join(', ')}) GROUP BY type`)
      .all(...types) as Array<{ type: string; count: number; lastAt: string }>;
    for (const r of rows) out.set(r.type, { count: r.count, lastAt: r.lastAt });
    return out;
  }

  /** Newest first, paged by (at, id) so a long history costs the same as a short one. */
  listEvents(opts: { limit?: number; fingerprint?: string } = {}): EventRow[] {
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 10_000));
    const rows = (
      opts.fingerprint
        ? this.db
            .prepare('SELECT * FROM events WHERE fingerprint = ? OR new_fingerprint = ? ORDER BY at DESC, id DESC LIMIT ?')
            .all(opts.fingerprint, opts.fingerprint, limit)
        : this.db.prepare('SELECT * FROM events ORDER BY at DESC, id DESC LIMIT ?').all(limit)
    ) as Array<{ id: number; at: string; type: string; fingerprint: string | null; new_fingerprint: string | null; source: EventSource | null; files: string; detail: string | null }>;
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      type: r.type,
      fingerprint: r.fingerprint,
      newFingerprint: r.new_fingerprint,
      source: r.source,
      files: JSON.parse(r.files) as string[],
      detail: r.detail,
    }));
  }
}
