import { mkdirSync, unlinkSync } from 'node:fs';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
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

async function writeDoc(file: string, doc: PresenceDoc): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(doc));
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** A wrapper announces itself; `drained(gen)` reports its calls in flight finished; removed at exit. */
export async function registerWrapper(stateDir: string, slot: string, generation: number): Promise<{ drained(gen: number): Promise<void>; remove(): void }> {
  const dir = path.join(stateDir, WRAPPERS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${process.pid}.json`);
  await writeDoc(file, { slot, pid: process.pid, drained: generation });
  const remove = () => {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.once('exit', remove);
  // Reports are written one at a time, the highest generation last: two back-to-back
  // announces report twice within milliseconds, and two writes racing on the one temp file
  // could lose the newer report (the rotation would then wait its whole drain limit).
  let reported = generation;
  let chain: Promise<void> = Promise.resolve();
  return {
    drained: (gen) => {
      reported = Math.max(reported, gen);
      chain = chain.then(() => writeDoc(file, { slot, pid: process.pid, drained: reported }).catch(() => undefined));
      return chain;
    },
    remove,
  };
}

/** Live wrappers of these slots that have not drained generation `gen` yet (stale files are removed). */
export async function undrained(stateDir: string, slots: string[], gen: number): Promise<number> {
  const dir = path.join(stateDir, WRAPPERS_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let pending = 0;
  await Promise.all(
    names
      .filter((n) => n.endsWith('.json'))
      .map(async (n) => {
        const file = path.join(dir, n);
        let doc: Partial<PresenceDoc>;
        try {
          doc = JSON.parse(await readFile(file, 'utf8')) as Partial<PresenceDoc>;
        } catch {
          return;
        }
        if (typeof doc.pid !== 'number' || !alive(doc.pid)) {
          await unlink(file).catch(() => undefined);
          return;
        }
        if (typeof doc.slot === 'string' && slots.includes(doc.slot) && (typeof doc.drained !== 'number' || doc.drained < gen)) pending++;
      }),
  );
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
