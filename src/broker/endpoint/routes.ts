import { createHash } from 'node:crypto';

/** What the endpoint needs of a converted entry (a `broker_entries` row of kind `endpoint`). */
export interface RouteEntry {
  name: string;
  slot: string;
  upstreamUrl: string;
}

export interface RouteRow extends RouteEntry {
  routeSecret: string;
}

const hash = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * Route secrets looked up by their SHA-256, so the time a lookup takes says nothing about
 * how much of a guessed secret was right (a string compare or an index walk would). The table
 * is reloaded from the registry when older than `ttlMs`, and on a miss at most once per
 * `ttlMs`, so an entry converted by `broker enable` while the daemon runs is served within
 * a moment, and a stream of wrong secrets cannot turn into a stream of queries.
 */
export class RouteTable {
  #byHash = new Map<string, RouteEntry>();
  #loadedAt = -Infinity;
  readonly #load: () => RouteRow[];
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(load: () => RouteRow[], opts: { ttlMs?: number; now?: () => number } = {}) {
    this.#load = load;
    this.#ttlMs = opts.ttlMs ?? 2_000;
    this.#now = opts.now ?? Date.now;
  }

  lookup(secret: string): RouteEntry | null {
    const h = hash(secret);
    if (this.#now() - this.#loadedAt >= this.#ttlMs) this.#reload();
    return this.#byHash.get(h) ?? null;
  }

  #reload(): void {
    const next = new Map<string, RouteEntry>();
    for (const r of this.#load()) next.set(hash(r.routeSecret), { name: r.name, slot: r.slot, upstreamUrl: r.upstreamUrl });
    this.#byHash = next;
    this.#loadedAt = this.#now();
  }
}
