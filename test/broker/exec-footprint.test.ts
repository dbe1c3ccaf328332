/**
 * What the exec wrapper keeps resident while it idles beside a server all day (issue 18's
 * wrapper row, docs/benchmarks.md): after relayed calls and a real rotation (CLI `rotate`, no
 * daemon: the wrapper reads the new token from the file store), a probe loaded into the wrapper
 * (--require, as the entry's node runs it) reports at exit which node modules it loaded and how
 * many forced full collections ran. It must not have loaded node:crypto (a token's fingerprint
 * is computed only when asked for), fs/promises or readline (the state files are read
 * synchronously), and it must have started no libuv thread pool (as many threads as a bare
 * node); once quiet it gives the burst's memory back (src/process/memory-trim.ts: three forced full collections).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { runCli } from '../helpers/home.js';
import { brokerWorld, startClient, type BrokerWorld } from '../helpers/broker.js';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { fingerprint } from '../../src/fingerprint.js';

const api = fakeApiForFile();
let w: BrokerWorld | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const threadsOf = (pid: number) => Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

describe.runIf(process.platform === 'linux')('exec wrapper footprint', () => {
  it('after calls and a rotation: no crypto, fs/promises or readline, no thread pool, and a trim once quiet', async () => {
    w = await brokerWorld(api(), 0);
    const out = w.h.path('probe-out.json');
    const probe = w.h.path('probe.cjs');
    await writeFile(
      probe,
      [
        "const { PerformanceObserver, constants: c } = require('node:perf_hooks');",
        'let forced = 0;',
        "new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail.kind === c.NODE_PERFORMANCE_GC_MAJOR && (e.detail.flags & c.NODE_PERFORMANCE_GC_FLAGS_FORCED)) forced++; }).observe({ entryTypes: ['gc'] });",
        `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ modules: process.moduleLoadList, forced })));`,
      ].join('\n') + '\n',
    );
    // The converted entry as the config holds it, with the probe before the CLI and a short quiet period.
    const entry = { ...w.entry, args: ['--require', probe, ...w.entry.args], env: { ...w.entry.env, MCP_TOKEN_ROTATOR_TRIM_QUIET_MS: '300' } };
    const c = await startClient(entry);
    const pid = c.pid as number;
    for (let i = 0; i < 30; i++) await c.client.callTool({ name: 'echo', arguments: { text: 'x' } });
    const r = await runCli(['rotate', '--json'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const fresh = w.live();
    expect(fresh).not.toBe(w.tok);
    // The rotation reaches the wrapper, which restarts the server on the new token.
    let who = '';
    for (let t0 = Date.now(); Date.now() - t0 < 10_000; await sleep(100)) {
      who = ((await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> }).content[0]!.text;
      if (who.endsWith(fingerprint(fresh))) break;
    }
    expect(who).toBe(`${w.email} ${fingerprint(fresh)}`);
    // Quiet: 300 ms, then three collections 500 ms apart.
    await sleep(2500);
    const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
    await sleep(500);
    const threads = { wrapper: threadsOf(pid), bare: threadsOf(bare.pid!) };
    bare.kill();
    await c.client.close();
    for (let t0 = Date.now(); Date.now() - t0 < 10_000; await sleep(50)) if (await readFile(out).then(() => true, () => false)) break;
    const got = JSON.parse(await readFile(out, 'utf8')) as { modules: string[]; forced: number };
    const loaded = new Set(got.modules);
    for (const m of ['NativeModule crypto', 'NativeModule fs/promises', 'NativeModule internal/fs/promises', 'NativeModule internal/readline/interface']) expect(loaded.has(m), m).toBe(false);
    // Sanity: the probe saw the relay's own modules.
    expect(loaded.has('NativeModule child_process')).toBe(true);
    expect(threads.wrapper).toBe(threads.bare);
    expect(got.forced).toBeGreaterThanOrEqual(3);
    expect(c.stderr()).not.toContain(fresh);
  }, 60_000);
});
