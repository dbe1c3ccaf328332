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
