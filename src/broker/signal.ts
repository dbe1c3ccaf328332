import fs, { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { brokerBus, type BrokerEvent } from './events.js';

/**
 * The rotation signal across processes: `<state dir>/broker-signal.json`, replaced
 * atomically at each phase, holding no secret. Wrappers watch the state DIRECTORY: an atomic
 * rename replaces the inode, which silences a watch on the file itself. In the rotating
 * process the same phases go out on `brokerBus` (the daemon's endpoint listens there).
 */
export const SIGNAL_FILE = 'broker-signal.json';

export type SignalPhase = 'announce' | 'stored' | 'aborted';

export interface SignalDoc {
  generation: number;
  phase: SignalPhase;
  slots: string[];
  revoke: boolean;
  at: string;
}

export function parseSignal(text: string): SignalDoc | null {
  try {
    const v = JSON.parse(text) as Partial<SignalDoc>;
    if (typeof v.generation !== 'number' || !['announce', 'stored', 'aborted'].includes(v.phase as string) || !Array.isArray(v.slots)) return null;
    return { generation: v.generation, phase: v.phase as SignalPhase, slots: v.slots.filter((s): s is string => typeof s === 'string'), revoke: v.revoke === true, at: typeof v.at === 'string' ? v.at : '' };
  } catch {
    return null;
  }
}

/**
 * Pure: whether a wrapper starting now joins a rotation in progress, i.e. the signal it read
 * first is a recent `announce` for its slot. The rotation does not wait for a wrapper that
 * registered after its announce, so that wrapper holds from the start (its first token may
 * be the one the regenerate call is about to kill) until `stored` or its hold timeout.
 * `maxAgeMs`: older announces are a rotating process that died (its hold would have ended).
 */
export function joinsAnnounced(seen: SignalDoc | null, slot: string, nowMs: number, maxAgeMs: number): boolean {
  if (!seen || seen.phase !== 'announce' || !seen.slots.includes(slot)) return false;
  const at = Date.parse(seen.at);
  return Number.isFinite(at) && nowMs - at >= 0 && nowMs - at < maxAgeMs;
}

// The signal file is a few hundred bytes in the user's own state directory, and its readers
// include the exec wrapper, which stays resident all day: synchronous reads keep node's
// fs/promises (and the readline module it loads) and libuv's thread pool out of that process
// (~0.5 MiB resident, docs/benchmarks.md), and cost microseconds. The writer is the rotating
// process; its writes stay asynchronous (fs.promises is loaded by the first one).
export async function readSignal(stateDir: string): Promise<SignalDoc | null> {
  try {
    return parseSignal(readFileSync(path.join(stateDir, SIGNAL_FILE), 'utf8'));
  } catch {
    return null;
  }
}

async function writeSignal(stateDir: string, doc: SignalDoc): Promise<void> {
  const file = path.join(stateDir, SIGNAL_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  // No fsync: the signal is advisory and rebuilt by the next rotation; speed is what counts
  // here (it sits between the regenerate response and the wrappers' restart).
  const { open, rename, unlink } = fs.promises;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(doc) + '\n');
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * One rotation's signal: `announce` takes a new generation; `stored` and `aborted` close it.
 * Failing to write the file never fails the rotation (the token is safe either way; the
 * wrappers then keep the old child, whose calls fail until the client restarts it).
 */
export class RotationSignal {
  #generation = 0;
  #open = false;

  constructor(
    private readonly stateDir: string,
    readonly slots: string[],
    readonly fingerprint: string,
    readonly revoke: boolean,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  get generation(): number {
    return this.#generation;
  }

  async announce(): Promise<void> {
    const prev = await readSignal(this.stateDir);
    this.#generation = (prev?.generation ?? 0) + 1;
    this.#open = true;
    brokerBus.emit('event', { type: 'announce', generation: this.#generation, slots: this.slots, fingerprint: this.fingerprint, revoke: this.revoke });
    await this.write('announce');
  }

  async stored(newFingerprint: string): Promise<void> {
    if (this.#generation === 0) {
      // Recovery after a crash: no announce in this process; a fresh generation still reaches everyone.
      const prev = await readSignal(this.stateDir);
      this.#generation = (prev?.generation ?? 0) + 1;
    }
    this.#open = false;
    brokerBus.emit('event', { type: 'stored', generation: this.#generation, slots: this.slots, fingerprint: this.fingerprint, newFingerprint });
    await this.write('stored');
  }

  async aborted(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    brokerBus.emit('event', { type: 'aborted', generation: this.#generation, slots: this.slots, fingerprint: this.fingerprint });
    await this.write('aborted');
  }

  private async write(phase: SignalPhase): Promise<void> {
    try {
      await writeSignal(this.stateDir, { generation: this.#generation, phase, slots: this.slots, revoke: this.revoke, at: new Date().toISOString() });
    } catch (e) {
      this.onError(e);
    }
  }
}

export type { BrokerEvent };

/**
 * Watches the state directory for signal changes that concern `slot`; calls `on` once per
 * (generation, phase). A slow stat poll backs up fs.watch (which can miss events on network
 * or overlay file systems). `seen` (default: the current file) counts as already handled; a
 * wrapper reads it before its first token, so a rotation stored in between is not missed.
 */
export async function watchSignal(stateDir: string, slot: string, on: (doc: SignalDoc) => void, opts: { pollMs?: number; seen?: SignalDoc | null } = {}): Promise<{ close(): void }> {
  let last = opts.seen !== undefined ? opts.seen : await readSignal(stateDir);
  let reading = false;
  let again = false;
  const check = async (): Promise<void> => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const doc = await readSignal(stateDir);
        if (!doc) continue;
        if (last && doc.generation === last.generation && doc.phase === last.phase) continue;
        if (last && doc.generation < last.generation) continue;
        last = doc;
        if (doc.slots.includes(slot)) on(doc);
      } while (again);
    } finally {
      reading = false;
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(stateDir, { persistent: false }, (_ev, name) => {
      if (name === null || name === SIGNAL_FILE) void check();
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  // The backup poll only stats the file (an idle wrapper should cost next to nothing) and
  // reads it when it changed.
  let stamp = '';
  const poll = setInterval(() => {
    let st;
    try {
      st = statSync(path.join(stateDir, SIGNAL_FILE));
    } catch {
      return;
    }
    const now = `${st.ino}:${st.mtimeMs}:${st.size}`;
    if (now !== stamp) {
      stamp = now;
      void check();
    }
  }, opts.pollMs ?? 2000);
  poll.unref();
  return {
    close() {
      watcher?.close();
      clearInterval(poll);
    },
  };
}
