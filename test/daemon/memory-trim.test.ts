import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { makeHome, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';

// The daemon gives back what its start-up and each queued job left in the V8 heap once quiet
// (src/process/memory-trim.ts: three forced full collections), instead of waiting 8-35 s for
// V8's memory reducer, which after a small burst may not act at all. A probe preloaded into
// the real daemon counts forced major collections; V8 never forces one by itself, so without
// the trim the count stays 0. A short quiet period (MCP_TOKEN_ROTATOR_TRIM_QUIET_MS) keeps the
// test fast.

const api = fakeApiForFile();
let h: TempHome;
beforeAll(async () => {
  h = await makeHome(api().url);
});
afterAll(async () => {
  await h?.cleanup();
});

const probe = (out: string): string => `const { PerformanceObserver, constants: c } = require('node:perf_hooks');
let forced = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail.kind === c.NODE_PERFORMANCE_GC_MAJOR && (e.detail.flags & c.NODE_PERFORMANCE_GC_FLAGS_FORCED)) forced++; }).observe({ entryTypes: ['gc'] });
process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ forced })));`;

it('once started and quiet, the daemon trims its heap (three forced full collections), once', async () => {
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
  const { forced } = JSON.parse(readFileSync(out, 'utf8')) as { forced: number };
  expect(forced).toBe(3);
});
