/**
 * Where a token stands once broker mode took it out of the configs: the converted entries
 * (status and doctor list them as its locations) and the store (scan asks the API about
 * tokens that live only there). Light: status loads this on every run.
 */
import type { Context } from '../context.js';
import { BrokerRegistry } from './registry.js';
import type { Store } from '../store/store.js';
import type { Secret } from '../secret.js';

export interface BrokerLocation {
  path: string;
  client: string;
  fingerprint: string;
}

export function brokerLocations(store: Store): BrokerLocation[] {
  return store.db
    .prepare('SELECT e.path AS path, e.client AS client, s.fingerprint AS fingerprint FROM broker_entries e JOIN broker_slots s ON s.slot = e.slot ORDER BY e.path')
    .all() as BrokerLocation[];
}

/** Each slot's current token from the store, by fingerprint, for those not in `except`. */
export async function slotTokens(ctx: Context, except: ReadonlyMap<string, unknown> = new Map()): Promise<Map<string, Secret>> {
  const slots = new BrokerRegistry(ctx.store).slots().filter((s) => !except.has(s.fingerprint));
  const out = new Map<string, Secret>();
  if (!slots.length) return out;
  const { openTokenStore } = await import('./store.js');
  const store = await openTokenStore(ctx);
  try {
    for (const s of slots) {
      const t = await store.read(s.slot).catch(() => null);
      if (t && t.fingerprint === s.fingerprint) out.set(s.fingerprint, t);
    }
  } finally {
    // The keychain's helper process: the daemon calls this at every rescan.
    store.close?.();
  }
  return out;
}
