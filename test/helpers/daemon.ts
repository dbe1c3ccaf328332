import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './home.js';

export interface SpawnedDaemon {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  raw: () => string;
  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** Spawns the real daemon and collects its pino JSON lines from stdout. */
export function spawnDaemon(env: Record<string, string>, opts: { prefix?: string[] } = {}): SpawnedDaemon {
  // `prefix`: a command the daemon runs under (e.g. prlimit with a lower open-files limit).
  const [cmd, ...pre] = [...(opts.prefix ?? []), process.execPath];
  const child = spawn(cmd as string, [...pre, CLI, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { unparsed: l };
        }
      });
  return {
    child,
    lines,
    raw: () => out + err,
    async waitFor(pred, timeoutMs = 10_000) {
      const t0 = Date.now();
      while (Date.now() - t0 < timeoutMs) {
        const hit = lines().find(pred);
        if (hit) return hit;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`daemon log line not seen in ${timeoutMs} ms; output:\n${out}\n${err}`);
    },
    async stop(signal = 'SIGTERM') {
      const t0 = Date.now();
      if (child.exitCode === null) child.kill(signal);
      const r = await exited;
      return { ...r, ms: Date.now() - t0 };
    },
  };
}
