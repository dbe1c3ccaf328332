import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Preflight leaves probe files in config directories for a moment, before any journal row
 * exists. A marker naming those configs lets the next command clean up if the process dies
 * meanwhile. Kept apart from run.ts so every command start can check it without loading
 * the executor.
 */
const MARKER = /^preflight-(\d+)\.json$/;

export async function markPreflight(stateDir: string, realPaths: string[]): Promise<string> {
  const file = path.join(stateDir, `preflight-${process.pid}.json`);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(realPaths), { mode: 0o600 });
  return file;
}

/** Removes the probe files of a preflight whose process died. One readdir when there are none. */
export async function cleanPreflightLeftovers(stateDir: string): Promise<void> {
  const names = (await readdir(stateDir).catch(() => [] as string[])).filter((n) => MARKER.test(n));
  if (!names.length) return;
  // Loaded only when a marker is there: every command start comes through here.
  const { isProcessAlive, removeStaleTemps } = await import('../clients/write.js');
  for (const n of names) {
    const m = MARKER.exec(n);
    if (!m || isProcessAlive(Number(m[1]))) continue;
    const file = path.join(stateDir, n);
    const reals = await readFile(file, 'utf8').then((t) => JSON.parse(t) as string[], () => [] as string[]);
    for (const r of reals) await removeStaleTemps(r);
    await unlink(file).catch(() => undefined);
  }
}
