import type { Context } from '../context.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import type { JournalRow } from '../store/journal.js';
import type { BrokerRun as EngineBrokerRun } from '../rotation/port.js';
import { BrokerRegistry } from './registry.js';
import { RotationSignal } from './signal.js';
import { openTokenStore, type TokenStore } from './store.js';

/**
 * Broker mode inside one run of the rotation executor: which slots follow the token, the
 * store their tokens live in, and the signal that reaches running wrappers. Created before
 * the regenerate call so the store (and the keychain's helper process) is ready when the
 * new token arrives. The engine sees it through its port (src/rotation/port.ts).
 */
export interface BrokerRun extends EngineBrokerRun {
  store: TokenStore;
  signal: RotationSignal;
}

/** Slots following either end of the rotation: the new end too, for a run resumed after moveSlots. */
export function rotationSlots(registry: BrokerRegistry, row: Pick<JournalRow, 'oldFingerprint' | 'newFingerprint'>): string[] {
  const fps = [row.oldFingerprint, ...(row.newFingerprint ? [row.newFingerprint] : [])];
  return [...new Set(fps.flatMap((fp) => registry.slotsForFingerprint(fp).map((s) => s.slot)))].sort();
}

export async function startBrokerRun(ctx: Context, row: JournalRow, log: Logger): Promise<BrokerRun | null> {
  const slots = rotationSlots(new BrokerRegistry(ctx.store), row);
  if (!slots.length) return null;
  const store = await openTokenStore(ctx);
  // The keychain's helper process starts now, not in the window after the regenerate call.
  store.warm?.();
  const signal = new RotationSignal(ctx.paths.dir, slots, row.oldFingerprint, row.source === 'revoke-now', (e) => log.warn({ err: (e as Error).message }, 'could not write the broker signal file'));
  return { slots, store, signal, announced: false, stored: false };
}

/**
 * The store step: the new token into the store for every slot (each write read back by the
 * keychain backend), the slots moved to the new fingerprint, then `stored` to the wrappers.
 * Idempotent: a resumed rotation does it again with the same token.
 */
export async function storeNewToken(ctx: Context, run: BrokerRun, row: JournalRow, newSecret: Secret): Promise<void> {
  for (const slot of run.slots) await run.store.write(slot, newSecret);
  new BrokerRegistry(ctx.store).moveSlots(row.oldFingerprint, newSecret.fingerprint, ctx.nowIso());
  run.stored = true;
  await run.signal.stored(newSecret.fingerprint);
}
