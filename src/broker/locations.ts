/**
 * Where a token stands once broker mode took it out of the configs: the converted entries
 * (status and doctor list them as its locations) and the store (scan asks the API about
 * tokens that live only there). Light: status loads this on every run.
 */
import type { Context } from '../context.js';
import { BrokerRegistry } from './registry.js';
import type { Store } from '../store/store.js';
import type { ScanResult } from '../scan.js';
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
  const { openBrokerStore } = await import('./common.js');
  const store = await openBrokerStore(ctx);
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

/**
 * A scan plus the tokens that live only in broker slots (no config holds them after
 * `broker enable`), as tokens with no config sites, so they are rotated like any other.
 * A store that cannot be read skips them with an error line rather than stopping the
 * rotation of the tokens that are in configs. Idempotent.
 */
export async function withSlotTokens(ctx: Context, scan: ScanResult): Promise<ScanResult> {
  try {
    for (const [fp, secret] of await slotTokens(ctx, scan.tokens)) scan.tokens.set(fp, { secret, sites: [] });
  } catch (e) {
    ctx.log.error({ err: (e as Error).message }, `the broker token store cannot be read; tokens that live only in broker slots are skipped: ${(e as Error).message}`);
  }
  return scan;
}
