import { hash as digest } from 'node:crypto';

/** What the endpoint needs of a converted entry (a `broker_entries` row of kind `endpoint`). */
export interface RouteEntry {
  /** The registry row: stable across a renewal of its route secret. */
  id: number;
  name: string;
  slot: string;
  upstreamUrl: string;
  /**
   * Set on a secret that was renewed (revoke-now, a port move) while the daemon ran: it still
   * reaches the sessions it carried (running clients hold the old URL until they reload
   * their config) and nothing new.
   */
  retired?: true;
}

export interface RouteRow extends Omit<RouteEntry, 'retired'> {
  routeSecret: string;
}

// One-shot crypto.hash (Node 20.12+): no Hash object per request, which cost the lookup more than the hashing.
const hash = (s: string): string => digest('sha256', s, 'hex');

/** How long a renewed secret keeps reaching its sessions. */
export const RETIRED_GRACE_MS = 24 * 3600_000;

/**
 * Route secrets looked up by their SHA-256, so the time a lookup takes says nothing about
 * how much of a guessed secret was right (a string compare or an index walk would). The table
 * is reloaded from the registry when older than `ttlMs`; on a miss, at once when the database
 * changed since the last load (`version`: SQLite's data_version, or `invalidate()` for the
 * daemon's own writes), else at most once per `ttlMs`. So an entry converted by `broker
 * enable` is served the moment its config is written, and a stream of wrong secrets cannot
 * turn into a stream of queries.
 */
export class RouteTable {
  #byHash = new Map<string, RouteEntry>();
  #retired = new Map<string, { entry: RouteEntry; until: number }>();
  #loadedAt = -Infinity;
  #loadedVersion: number | null = null;
  #stale = false;
  readonly #load: () => RouteRow[];
  readonly #version: (() => number) | undefined;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(load: () => RouteRow[], opts: { ttlMs?: number; now?: () => number; version?: () => number } = {}) {
    this.#load = load;
    this.#version = opts.version;
    this.#ttlMs = opts.ttlMs ?? 2_000;
    this.#now = opts.now ?? Date.now;
  }

  lookup(secret: string): RouteEntry | null {
    const h = hash(secret);
    if (this.#stale || this.#now() - this.#loadedAt >= this.#ttlMs) this.#reload();
    const hit = this.#byHash.get(h);
    if (hit) return hit;
    if (this.#version && this.#version() !== this.#loadedVersion) {
      this.#reload();
      const again = this.#byHash.get(h);
      if (again) return again;
    }
    const old = this.#retired.get(h);
    if (old && old.until > this.#now()) return old.entry;
    return null;
  }

  /** The registry changed in this process: the next lookup reloads. */
  invalidate(): void {
    this.#stale = true;
  }

  #reload(): void {
    const version = this.#version?.() ?? null;
    const next = new Map<string, RouteEntry>();
    const byId = new Map<number, string>();
    for (const r of this.#load()) {
      const h = hash(r.routeSecret);
      next.set(h, { id: r.id, name: r.name, slot: r.slot, upstreamUrl: r.upstreamUrl });
      byId.set(r.id, h);
    }
    // A secret that left while its entry stayed was renewed: it keeps its sessions a while.
    const now = this.#now();
    for (const [h, e] of this.#byHash) {
      const nh = byId.get(e.id);
      if (nh !== undefined && nh !== h) this.#retired.set(h, { entry: { ...e, retired: true }, until: now + RETIRED_GRACE_MS });
    }
    for (const [h, r] of this.#retired) if (r.until <= now || !byId.has(r.entry.id)) this.#retired.delete(h);
    this.#byHash = next;
    this.#loadedAt = now;
    this.#loadedVersion = version;
    this.#stale = false;
  }
}
