import type { Context } from '../context.js';
import type { ScanResult } from '../scan.js';
import type { Secret } from '../secret.js';
import { BrokerRegistry } from './registry.js';
import { openTokenStore, type TokenStore } from './store.js';

export type SlotToken = [fingerprint: string, secret: Secret, slots: string[]];

/**
 * Tokens that live in broker slots, read from the token store: after `broker enable` a token
 * may be in no config at all, and must still be tracked and rotated. Costs one indexed query
 * when broker mode is off (the store is not opened).
 */
export async function slotTokens(ctx: Context): Promise<SlotToken[]> {
  const rows = new BrokerRegistry(ctx.store).slots();
  if (!rows.length) return [];
  const byFp = new Map<string, string[]>();
  for (const r of rows) byFp.set(r.fingerprint, [...(byFp.get(r.fingerprint) ?? []), r.slot]);
  let store: TokenStore | undefined;
  try {
    store = await openTokenStore(ctx);
    const out: SlotToken[] = [];
    for (const [fp, slots] of byFp) {
      for (const slot of slots) {
        const secret = await store.read(slot);
        // A slot whose store entry disagrees with the registry is left to `broker status` to report.
        if (secret && secret.fingerprint === fp) {
          out.push([fp, secret, slots]);
          break;
        }
      }
    }
    return out;
  } catch (e) {
    // A locked or missing keychain must not stop the rotation of tokens that are in configs.
    ctx.log.error({ err: (e as Error).message }, `the broker token store cannot be read; tokens that live only in broker slots are skipped: ${(e as Error).message}`);
    return [];
  } finally {
    store?.close?.();
  }
}

/** Adds slot-held tokens no config holds to a scan, as tokens with no config sites. Idempotent. */
export async function addSlotTokens(ctx: Context, scan: ScanResult): Promise<ScanResult> {
  for (const [fp, secret] of await slotTokens(ctx)) if (!scan.tokens.has(fp)) scan.tokens.set(fp, { secret, sites: [] });
  return scan;
}
