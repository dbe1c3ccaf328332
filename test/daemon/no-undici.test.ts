import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { makeHome, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';

// The provider API clients use node:http/node:https (src/api/request.ts), not undici: undici's
// WebAssembly parser, compiled on its first request, left the idle daemon ~20 MiB bigger
// (docs/benchmarks.md). The built daemon (the CommonJS bundle, where every package is a
// require()) checks a token with the API at start; a preloaded hook then lists the packages it
// required. Fails if anything on that path brings undici back.

const api = fakeApiForFile();
let h: TempHome;
beforeAll(async () => {
  h = await makeHome(api().url);
});
afterAll(async () => {
  await h?.cleanup();
});

it('the daemon checks its token at start without loading undici', async () => {
  const tok = api().addToken({ email: 'u@example.com', ageDays: 10 });
  await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: tok } } } }));
  const hook = await h.write(
    'hook.cjs',
    `const fs = require('node:fs');
process.on('exit', () => {
  const pkgs = new Set(Object.keys(require.cache).map((k) => /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(k)?.[1]).filter(Boolean));
  fs.writeFileSync(${JSON.stringify(h.path('loaded.json'))}, JSON.stringify([...pkgs]));
});`,
  );
  const d = spawnDaemon({ ...h.env, NODE_OPTIONS: `--require ${hook}` });
  try {
    await d.waitFor((l) => /checked 1 token\(s\) with the API/.test(String(l.msg)), 15_000);
    expect(api().requests.length).toBeGreaterThan(0);
  } finally {
    expect((await d.stop('SIGTERM')).code).toBe(0);
  }
  const loaded = JSON.parse(readFileSync(h.path('loaded.json'), 'utf8')) as string[];
  // The hook saw the bundle's requires (control), and undici was not one of them.
  expect(loaded).toContain('better-sqlite3');
  expect(loaded).not.toContain('undici');
});
