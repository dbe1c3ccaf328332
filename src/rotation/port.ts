/**
 * What the rotation engine needs from broker mode, defined by the engine so that it never
 * imports src/broker/: the broker implements it (src/broker/rotation-port.ts) and the
 * composition roots (operations.ts, the CLI session, the daemon) hand it in. Dependencies
 * then point one way, broker -> rotation, and test/architecture.test.ts keeps it so.
 *
 * The engine's side of a rotation with broker slots: before the regenerate call, announce
 * it to running wrappers and wait for their calls in flight (`drain`); right after the new
 * token is journaled, store it for every slot (`storeNewToken`); abort the announcement if
 * nothing was stored. Tokens that live only in broker slots are rotated like any other
 * (`withSlotTokens`), and heal puts restored plaintext copies back first (`healEntries`).
 */
import type { Context } from '../context.js';
import type { Logger } from '../log.js';
import type { ScanResult } from '../scan.js';
import type { Secret } from '../secret.js';
import type { JournalRow } from '../store/journal.js';
import type { HealRefused } from './heal-verdict.js';

/** One rotation's broker state, carried by the executor from step to step (in memory only). */
export interface BrokerRun {
  /** The slots following either end of the rotation. */
  slots: string[];
  /** The token store of those slots: named in messages, closed at the end of the run. */
  store: { readonly where: string; close?(): void };
  /** The rotation signal to running wrappers (and the daemon's endpoint). */
  signal: {
    readonly generation: number;
    /** revoke-now: a leak does not wait for a long drain. */
    readonly revoke: boolean;
    announce(): Promise<void>;
    aborted(): Promise<void>;
  };
  announced: boolean;
  stored: boolean;
}

export interface BrokerPort {
  /**
   * The scan plus the tokens that live only in broker slots, as tokens with no config sites.
   * Never throws for an unreadable store (those tokens are skipped with an error line).
   */
  withSlotTokens(ctx: Context, scan: ScanResult): Promise<ScanResult>;
  /** Broker mode for one run of the executor; null when no slot follows either end of the row. */
  startRun(ctx: Context, row: JournalRow, log: Logger): Promise<BrokerRun | null>;
  /** After `announce`: waits, at most `maxMs`, until wrappers and the local endpoint have no call in flight on the run's slots. */
  drain(ctx: Context, run: BrokerRun, maxMs: number): Promise<{ ms: number; pending: number }>;
  /** The store step: the new token into the store for every slot, the slots moved, `stored` to the wrappers. Idempotent. */
  storeNewToken(ctx: Context, run: BrokerRun, row: JournalRow, newSecret: Secret): Promise<void>;
  /** Heal, broker side (before retired tokens are put back): restored plaintext copies of converted entries go back to the broker form. */
  healEntries(ctx: Context, scan: ScanResult, remembered: ReadonlyMap<string, Secret>): Promise<{ scan: ScanResult; remembered: ReadonlyMap<string, Secret>; refused: HealRefused[] }>;
}
