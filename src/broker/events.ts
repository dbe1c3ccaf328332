import { EventEmitter } from 'node:events';

/**
 * The rotation signal inside one process (the daemon's local endpoint listens here; the
 * generation file in the state dir carries the same phases to wrappers in other processes).
 * No token value travels on it: listeners read the store.
 *
 * - `announce`: a regenerate for these slots is about to be called; hold new requests.
 * - `stored`: the new token is in the store; release held requests with it.
 * - `aborted`: the rotation ended without a new token (refused, failed); release with the old one.
 */
export type BrokerEvent =
  | { type: 'announce'; generation: number; slots: string[]; fingerprint: string; revoke: boolean }
  | { type: 'stored'; generation: number; slots: string[]; fingerprint: string; newFingerprint: string }
  | { type: 'aborted'; generation: number; slots: string[]; fingerprint: string };

class BrokerBus extends EventEmitter<{ event: [BrokerEvent] }> {}

export const brokerBus = new BrokerBus();

/**
 * Requests already on the wire for the announced slots finish with the old token before
 * regenerate kills it: the rotating code awaits `drainInFlight` between `announce` and the
 * regenerate call, with a bound (short for `revoke-now`: a leak does not wait). The daemon's
 * local endpoint registers here; with nothing registered it resolves at once.
 */
export type Drainer = (slots: string[], maxMs: number) => Promise<void>;
const drainers = new Set<Drainer>();

export function onDrain(d: Drainer): () => void {
  drainers.add(d);
  return () => void drainers.delete(d);
}

export async function drainInFlight(slots: string[], maxMs: number): Promise<void> {
  await Promise.all([...drainers].map((d) => d(slots, maxMs).catch(() => undefined)));
}
