/**
 * Broker mode's implementation of the rotation engine's port (src/rotation/port.ts). Light:
 * the composition roots import it at start, and each method loads its module only when a
 * rotation or heal gets there (status and other commands never pay for the broker code).
 */
import type { Context } from '../context.js';
import type { BrokerPort } from '../rotation/port.js';
import type { ScanResult } from '../scan.js';
import type { BrokerRun } from './rotation.js';

/**
 * A scan plus the tokens that live only in broker slots (no config holds them after
 * `broker enable`), as tokens with no config sites, so they are rotated like any other.
 * A store that cannot be read skips them with an error line rather than stopping the
 * rotation of the tokens that are in configs. Idempotent.
 */
export async function withSlotTokens(ctx: Context, scan: ScanResult): Promise<ScanResult> {
  try {
    const { slotTokens } = await import('./locations.js');
    for (const [fp, secret] of await slotTokens(ctx, scan.tokens)) scan.tokens.set(fp, { secret, sites: [] });
  } catch (e) {
    ctx.log.error({ err: (e as Error).message }, `the broker token store cannot be read; tokens that live only in broker slots are skipped: ${(e as Error).message}`);
  }
  return scan;
}

export const brokerPort: BrokerPort = {
  withSlotTokens,
  async startRun(ctx, row, log) {
    return (await import('./rotation.js')).startBrokerRun(ctx, row, log);
  },
  // Both kinds of client at once: exec wrappers (their drain reports) and the daemon's local
  // endpoint in this process (its requests on the wire).
  async drain(ctx, run, maxMs) {
    const [{ waitForDrain }, { drainInFlight }] = await Promise.all([import('./presence.js'), import('./events.js')]);
    const [d] = await Promise.all([waitForDrain(ctx.paths.dir, run.slots, run.signal.generation, maxMs), drainInFlight(run.slots, maxMs)]);
    return d;
  },
  // The run is always one startRun made (the engine only hands its own back): its store and signal are ours.
  async storeNewToken(ctx, run: BrokerRun, row, newSecret) {
    return (await import('./rotation.js')).storeNewToken(ctx, run, row, newSecret);
  },
  async healEntries(ctx, scan, remembered) {
    return (await import('./heal.js')).healBrokerEntries(ctx, scan, remembered);
  },
};
