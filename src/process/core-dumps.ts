import { writeFileSync } from 'node:fs';

/**
 * Keeps token values out of core dumps of this process, as far as Node allows. Node has no
 * setrlimit and no prctl, so:
 * - Linux: `/proc/self/coredump_filter` set to 0, so a core file (if the limit allows one)
 *   holds no memory mapping, only registers and notes: no heap, so no token. Synchronous and
 *   cheap, done by every command.
 * - Linux, the daemon (long-lived): also `prlimit --pid <self> --core=0:0` (util-linux), which
 *   sets RLIMIT_CORE to 0 for this process; best effort, skipped when prlimit is missing.
 * - The service units say it too: systemd `LimitCORE=0`, launchd `HardResourceLimits`/`Core` 0.
 * - macOS and Windows without the service: not done (no API reachable from Node).
 */
export function dropCoreDumpMemory(platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux') return false;
  try {
    writeFileSync('/proc/self/coredump_filter', '0');
    return true;
  } catch {
    return false;
  }
}

/** Sets RLIMIT_CORE of this process to 0 with util-linux prlimit; resolves whether it worked. */
export async function limitCoreSize(platform: NodeJS.Platform = process.platform): Promise<boolean> {
  if (platform !== 'linux') return false;
  // Loaded here, not at the top: every command loads this file, only the daemon runs this.
  const { execFile } = await import('node:child_process');
  const { childEnv } = await import('./child-env.js');
  return new Promise((resolve) => {
    execFile('prlimit', ['--pid', String(process.pid), '--core=0:0'], { timeout: 5000, env: childEnv(process.env), windowsHide: true }, (error) => resolve(!error));
  });
}
