import { brokerBus, onDrain, type BrokerEvent } from '../events.js';
import type { TokenStore } from '../store.js';
import type { Secret } from '../../secret.js';
import { applyAnnounce, applyRelease, holdDecision, type HoldState } from './policy.js';

/**
 * The current token of each slot, as the daemon hands it out (local endpoint, `broker-token`
 * on the control socket), with the rotation hold: from `announce` until `stored` (or
 * `aborted`) a new request for an affected slot waits, so it goes out with the new token
 * instead of meeting the old one just as regenerate kills it. Requests already on the wire
 * are not touched: they finish with the old token, which dies only when regenerate answers.
 */
export class SlotTokens {
  readonly #store: TokenStore;
  readonly #now: () => number;
  readonly #cache = new Map<string, Secret>();
  readonly #hold: HoldState = { held: new Map() };
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #onEvent = (e: BrokerEvent): void => this.apply(e);
  readonly #inFlight = new Map<string, number>();
  readonly #drained = new Set<() => void>();
  readonly #offDrain: () => void;

  constructor(store: TokenStore, opts: { now?: () => number } = {}) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    brokerBus.on('event', this.#onEvent);
    this.#offDrain = onDrain((slots, maxMs) => this.drain(slots, maxMs));
  }

  /**
   * Counts a request on the wire with the slot's token until `done` is called (a POST or
   * DELETE: when its response ends; a GET stream: once it is open, since it may last hours).
   */
  track(slot: string): () => void {
    this.#inFlight.set(slot, (this.#inFlight.get(slot) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const n = (this.#inFlight.get(slot) ?? 1) - 1;
      if (n > 0) this.#inFlight.set(slot, n);
      else this.#inFlight.delete(slot);
      // Only while a rotation waits for the slot's calls to drain (no copy per call otherwise).
      if (this.#drained.size > 0) for (const w of [...this.#drained]) w();
    };
  }

  inFlight(slot: string): number {
    return this.#inFlight.get(slot) ?? 0;
  }

  /** Resolves when no request of these slots is on the wire, or after `maxMs`. */
  async drain(slots: string[], maxMs: number): Promise<void> {
    const busy = (): boolean => slots.some((s) => this.inFlight(s) > 0);
    if (!busy()) return;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (busy()) return;
        finish();
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.#drained.delete(check);
        resolve();
      };
      const timer = setTimeout(finish, maxMs);
      this.#drained.add(check);
    });
  }

  /** Exposed for tests that drive the hold without the bus. */
  apply(e: BrokerEvent): void {
    if (e.type === 'announce') {
      applyAnnounce(this.#hold, e.slots, e.generation, e.revoke, this.#now());
      return;
    }
    // The new token (or, on abort, the old one) is in the store: forget what we cached.
    for (const slot of e.slots) this.#cache.delete(slot);
    for (const slot of applyRelease(this.#hold, e.slots, e.generation)) this.#wake(slot);
  }

  /** True while a rotation of this slot is announced and not finished (and the bound not reached). */
  isHeld(slot: string): boolean {
    return holdDecision(this.#hold, slot, this.#now()).hold;
  }

  /** Waits while the slot is held; resolves with the milliseconds waited. Bounded by the hold's deadline. */
  async waitUntilReleased(slot: string): Promise<number> {
    const t0 = this.#now();
    for (;;) {
      const d = holdDecision(this.#hold, slot, this.#now());
      if (!d.hold) return this.#now() - t0;
      await new Promise<void>((resolve) => {
        let set = this.#waiters.get(slot);
        if (!set) this.#waiters.set(slot, (set = new Set()));
        const done = (): void => {
          clearTimeout(timer);
          set.delete(done);
          resolve();
        };
        const timer = setTimeout(done, d.ms + 1);
        set.add(done);
      });
    }
  }

  /**
   * The slot's cached token when no hold applies, at once (no promise: every forwarded call
   * asks); null when `get` must be awaited (held, or not loaded yet).
   */
  peek(slot: string): Secret | null {
    if (this.#hold.held.size > 0 && holdDecision(this.#hold, slot, this.#now()).hold) return null;
    return this.#cache.get(slot) ?? null;
  }

  /** The slot's current token after any hold; `fresh` re-reads the store (after an upstream 401). */
  async get(slot: string, opts: { fresh?: boolean } = {}): Promise<Secret | null> {
    await this.waitUntilReleased(slot);
    if (!opts.fresh) {
      const hit = this.#cache.get(slot);
      if (hit) return hit;
    }
    const t = await this.#store.read(slot);
    if (t) this.#cache.set(slot, t);
    else this.#cache.delete(slot);
    return t;
  }

  #wake(slot: string): void {
    const set = this.#waiters.get(slot);
    if (!set) return;
    this.#waiters.delete(slot);
    for (const w of [...set]) w();
  }

  close(): void {
    brokerBus.off('event', this.#onEvent);
    this.#offDrain();
    this.#hold.held.clear();
    for (const slot of [...this.#waiters.keys()]) this.#wake(slot);
    this.#cache.clear();
  }
}
