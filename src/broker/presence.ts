import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Which exec wrappers run, and whether they have drained: `<state dir>/broker-wrappers/<pid>.json`
 * `{ slot, pid, drained }` (no secret). After announcing, the rotating process waits (bounded)
 * until every live wrapper of the slots reports `drained` >= this generation, i.e. its calls
 * in flight have finished with the old token, which still works until the regenerate call.
 */
export const WRAPPERS_DIR = 'broker-wrappers';

interface PresenceDoc {
  slot: string;
  pid: number;
  drained: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

// Synchronous: these files are tens of bytes in the user's state directory, and the writer is
// the exec wrapper, resident all day: no fs/promises, no libuv thread pool in that process
// (~0.5 MiB resident, docs/benchmarks.md) for microseconds of blocking.
function writeDoc(file: string, doc: PresenceDoc): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc), { mode: 0o600 });
  renameSync(tmp, file);
}

/** A wrapper announces itself; `drained(gen)` reports its calls in flight finished; removed at exit. */
export async function registerWrapper(stateDir: string, slot: string, generation: number): Promise<{ drained(gen: number): void; remove(): void }> {
  const dir = path.join(stateDir, WRAPPERS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${process.pid}.json`);
  writeDoc(file, { slot, pid: process.pid, drained: generation });
  const remove = () => unlinkQuietly(file);
  process.once('exit', remove);
  // The highest generation reported so far is what the file says: two back-to-back announces
  // report twice within milliseconds, and an older report must not overwrite the newer one
  // (the rotation would then wait its whole drain limit). Each write completes before the next.
  let reported = generation;
  return {
    drained: (gen) => {
      reported = Math.max(reported, gen);
      try {
        writeDoc(file, { slot, pid: process.pid, drained: reported });
      } catch {
        // The rotation then waits its drain limit for this wrapper; nothing is lost.
      }
    },
    remove,
  };
}

/** Live wrappers of these slots that have not drained generation `gen` yet (stale files are removed). */
export async function undrained(stateDir: string, slots: string[], gen: number): Promise<number> {
  const dir = path.join(stateDir, WRAPPERS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let pending = 0;
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const file = path.join(dir, n);
    let doc: Partial<PresenceDoc>;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<PresenceDoc>;
    } catch {
      continue;
    }
    if (typeof doc.pid !== 'number' || !alive(doc.pid)) {
      unlinkQuietly(file);
      continue;
    }
    if (typeof doc.slot === 'string' && slots.includes(doc.slot) && (typeof doc.drained !== 'number' || doc.drained < gen)) pending++;
  }
  return pending;
}

/** Waits until every live wrapper of the slots drained generation `gen`, at most `timeoutMs`. */
export async function waitForDrain(stateDir: string, slots: string[], gen: number, timeoutMs: number): Promise<{ ms: number; pending: number }> {
  const t0 = Date.now();
  for (;;) {
    const pending = await undrained(stateDir, slots, gen);
    if (pending === 0 || Date.now() - t0 >= timeoutMs) return { ms: Date.now() - t0, pending };
    await new Promise((r) => setTimeout(r, 5));
  }
}
