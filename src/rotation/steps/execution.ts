import type { PreparedWrite } from '../../clients/write.js';
import type { Context } from '../../context.js';
import type { Logger } from '../../log.js';
import type { FoundToken } from '../../scan.js';
import type { Secret } from '../../secret.js';
import type { JournalRow } from '../../store/journal.js';
import type { Action, MachineState } from '../machine.js';
import type { FilePlan } from '../plan.js';
import type { RotationResult } from '../result.js';
import type { BrokerPort, BrokerRun } from '../port.js';
import { providerModule } from '../../providers/index.js';

/** What one run of the executor carries from step to step (in memory only; the journal is the truth). */
export interface Execution {
  readonly ctx: Context;
  readonly id: number;
  readonly log: Logger;
  /** The token being replaced, from the journal (null if the journal lost it). */
  readonly oldSecret: Secret | null;
  readonly result: RotationResult;
  /** Preflight's snapshots and templates by path; empty when resuming after a crash. */
  readonly snapshots: Map<string, FilePlan>;
  /** Whether the set of files holding the old token is current (false when resuming). */
  rediscovered: boolean;
  /** Every token in the configs: blanked from backups so a backup never holds a live one. */
  liveTokens: Map<string, FoundToken> | undefined;
  /** Temp files opened before the regenerate call, by path (empty when resuming). */
  readonly prepared: Map<string, PreparedWrite>;
  /** Broker mode: the slots following this token, their store and the signal (null: no slots). */
  broker: BrokerRun | null;
  /** Broker mode as the engine sees it (src/rotation/port.ts). */
  readonly brokerPort: BrokerPort;
}

/** `next`: the outcome is journaled, ask the machine again. `stop`: return the result as it is. */
export type Verdict = 'next' | 'stop';

export type StepHandler<T extends Action['type']> = (ex: Execution, row: JournalRow, action: Extract<Action, { type: T }>) => Promise<Verdict>;

export function machineState(row: JournalRow, broker?: BrokerRun | null): MachineState {
  const s: MachineState = { step: row.step, files: row.files, hasNewToken: !!row.newToken };
  if (providerModule(row.provider)?.rotate === 'rotate-no-idempotency') s.idempotent = false;
  if (broker) s.broker = { announce: !broker.announced, store: !broker.stored };
  return s;
}
