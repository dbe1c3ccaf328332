// Measures 3 and 4 (the CLI part): wall-clock time of spawned CLI commands.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { now, summarize } from './stats.mjs';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/** Spawns node with args; resolves with wall time (spawn to exit), code and output. */
export function timeNode(args, { env = process.env, input } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, args, { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: now() - t0, code, stdout, stderr }));
    if (input !== undefined) child.stdin.end(input);
  });
}

export function timeCli(args, opts) {
  return timeNode([CLI, ...args], opts);
}

/**
 * Runs each named case `runs` times, interleaved round-robin so that machine noise falls on
 * all of them alike; one untimed warm-up run of each first (page cache, compile cache).
 * A case is { name, args, env, expectCodes }.
 */
export async function timeCases(cases, runs) {
  const times = Object.fromEntries(cases.map((c) => [c.name, []]));
  const check = (c, r) => {
    const ok = c.expectCodes ?? [0];
    if (!ok.includes(r.code)) throw new Error(`${c.name}: exit ${r.code}\n${r.stderr}`);
  };
  for (const c of cases) check(c, await timeNode(c.args, { env: c.env }));
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const r = await timeNode(c.args, { env: c.env });
      check(c, r);
      times[c.name].push(r.ms);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summarize(v)]));
}
