import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { makeHome, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';

// What the idle daemon holds (issue 18), checked inside the real daemon by a preloaded probe:
// - it gives back what its start-up and each queued job left in the V8 heap once quiet
//   (src/process/memory-trim.ts: three forced full collections), instead of waiting 8-35 s for
//   V8's memory reducer, which after a small burst may not act at all. V8 never forces a
//   collection by itself, so without the trim the probe counts 0. A short quiet period
//   (MCP_TOKEN_ROTATOR_TRIM_QUIET_MS) keeps the test fast;
// - it runs without V8's optimizing tiers (scripts/boot.cjs, --max-opt=1): a
//   function the probe heats in the daemon stays at the baseline tier, where a bare node
//   (the control, same probe) optimizes it.

const api = fakeApiForFile();
let h: TempHome;
beforeAll(async () => {
  h = await makeHome(api().url);
});
afterAll(async () => {
  await h?.cleanup();
});

/**
 * Counts forced major collections; at exit (after the daemon's start set its flags) heats a
 * function and reads V8's optimization status of it (bit 4: optimized by Maglev or TurboFan).
 */
const probe = (out: string): string => `const { PerformanceObserver, constants: c } = require('node:perf_hooks');
let forced = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail.kind === c.NODE_PERFORMANCE_GC_MAJOR && (e.detail.flags & c.NODE_PERFORMANCE_GC_FLAGS_FORCED)) forced++; }).observe({ entryTypes: ['gc'] });
process.on('exit', () => {
  require('node:v8').setFlagsFromString('--allow-natives-syntax');
  const status = new Function('f', 'return %GetOptimizationStatus(f)');
  const hot = (x) => x * 2 + 1;
  let s = 0;
  for (let i = 0; i < 3e6; i++) s += hot(i);
  require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ forced, optimized: (status(hot) & 16) !== 0, s }));
});`;

it('once started and quiet, the daemon trims its heap (three forced full collections, once), and runs without optimizing tiers', async () => {
  const tok = api().addToken({ email: 'u@example.com', ageDays: 10 });
  await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: tok } } } }));
  const out = h.path('gc.json');
  const hook = await h.write('probe.cjs', probe(out));
  const d = spawnDaemon({ ...h.env, NODE_OPTIONS: `--require ${hook}`, MCP_TOKEN_ROTATOR_TRIM_QUIET_MS: '300' });
  try {
    await d.waitFor((l) => /checked 1 token\(s\) with the API/.test(String(l.msg)), 15_000);
    // 300 ms quiet, then three collections 0.5 s apart; then nothing more while idle.
    await new Promise((r) => setTimeout(r, 3_000));
  } finally {
    expect((await d.stop('SIGTERM')).code).toBe(0);
  }
  const { forced, optimized } = JSON.parse(readFileSync(out, 'utf8')) as { forced: number; optimized: boolean };
  expect(forced).toBe(3);
  // The daemon's start turned the optimizing tiers off...
  expect(optimized).toBe(false);
  // ...where a bare node with the same probe optimizes the same function (the probe can tell).
  const control = h.path('control.json');
  const controlProbe = await h.write('control.cjs', probe(control));
  execFileSync(process.execPath, ['--require', controlProbe, '-e', ''], { env: h.env });
  expect((JSON.parse(readFileSync(control, 'utf8')) as { optimized: boolean }).optimized).toBe(true);
});
