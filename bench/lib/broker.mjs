// Broker mode, stdio side: the exec wrapper's cost. Real SDK clients against the stand-in of
// Certorix's local server (dist/test/fake/local-server.js), directly and through `exec`.
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Context } from '../../dist/src/context.js';
import { BrokerRegistry, newSlotName } from '../../dist/src/broker/registry.js';
import { FileTokenStore, BACKEND_META, BACKEND_FILE } from '../../dist/src/broker/store.js';
import { Secret } from '../../dist/src/secret.js';
import { DAEMON_NODE_OPTIONS } from '../../dist/src/service/render.js';
import { spawn } from 'node:child_process';
import { CLI, timeCli } from './cli.mjs';
import { memOf, cpuOf, clockTicks } from './proc.mjs';
import { now, summarize, sleep } from './stats.mjs';

const LOCAL_SERVER = fileURLToPath(new URL('../../dist/test/fake/local-server.js', import.meta.url));

/** Broker mode as `broker enable` leaves it: slot, token in the (pinned) file store, converted entry. */
async function convertedHome(api, email) {
  const home = await mkdtemp(path.join(process.env.BENCH_TMPDIR || os.tmpdir(), 'mtr-bench-broker-'));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', CERTORIX_API_URL: api.url };
  const token = api.addToken({ email, role: 'editor', ageDays: 10 });
  const ctx = new Context({ pathEnv: { platform: 'linux', home, env: { HOME: home } } });
  const slot = newSlotName();
  const secret = new Secret(token);
  await new FileTokenStore(ctx.paths.dir).write(slot, secret);
  ctx.store.setMeta(BACKEND_META, 'file');
  // And its copy beside the DB, which broker enable (openTokenStore) writes with the pin.
  await writeFile(path.join(ctx.paths.dir, BACKEND_FILE), 'file\n', { mode: 0o600 });
  new BrokerRegistry(ctx.store).addSlot(slot, secret.fingerprint, ctx.nowIso());
  const stateDir = ctx.paths.dir;
  await ctx.close();
  const entry = { command: process.execPath, args: [CLI, 'exec', slot, '--state-dir', stateDir, '--', process.execPath, LOCAL_SERVER], env: { CERTORIX_API_URL: api.url } };
  await mkdir(path.join(home, '.config/Claude'), { recursive: true });
  await writeFile(path.join(home, '.config/Claude/claude_desktop_config.json'), JSON.stringify({ mcpServers: { certorix: entry } }, null, 2));
  return { home, env, token, entry, cleanup: () => rm(home, { recursive: true, force: true }) };
}

async function connect(params) {
  const transport = new StdioClientTransport({ ...params, stderr: 'ignore' });
  const client = new Client({ name: 'bench', version: '1' });
  const t0 = now();
  await client.connect(transport);
  return { client, transport, connectMs: now() - t0 };
}

async function callTimes(client, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await client.callTool({ name: 'echo', arguments: { text: 'x' } });
    out.push(now() - t0);
  }
  return out;
}

function childrenOf(pid) {
  const out = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* gone */
    }
  }
  return out;
}

export async function measureBroker({ api, calls = 600, block = 50, rounds = 5, idleSettleMs = 10_000, idleWindowMs = 20_000 }) {
  const h = await convertedHome(api, 'bench-broker@example.com');
  try {
    // 1. relay overhead per call: the same client code, direct vs through exec, interleaved blocks.
    const direct = await connect({ command: process.execPath, args: [LOCAL_SERVER], env: { CERTORIX_API_TOKEN: h.token, CERTORIX_API_URL: api.url } });
    const wrapped = await connect(h.entry);
    await callTimes(direct.client, 50);
    await callTimes(wrapped.client, 50);
    const d = [];
    const w = [];
    for (let i = 0; i < calls / block; i++) {
      d.push(...(await callTimes(direct.client, block)));
      w.push(...(await callTimes(wrapped.client, block)));
    }
    await direct.client.close();
    const direct50 = summarize(d).median;
    const wrapped50 = summarize(w).median;

    // 2. the server's own start + handshake, and the longest call held by a rotation.
    // Spawn to `initialize` answered, the server alone against the same server through `exec`
    // (what a client waits for at each start), interleaved.
    const starts = [];
    const wrappedStarts = [];
    for (let i = 0; i < Math.max(rounds, 7); i++) {
      const c = await connect({ command: process.execPath, args: [LOCAL_SERVER], env: { CERTORIX_API_TOKEN: h.token, CERTORIX_API_URL: api.url } });
      starts.push(c.connectMs);
      await c.client.close();
      const cw = await connect(h.entry);
      wrappedStarts.push(cw.connectMs);
      await cw.client.close();
    }
    let failed = 0;
    const holdRound = async () => {
      let running = true;
      let max = 0;
      const loop = (async () => {
        while (running) {
          const t0 = now();
          try {
            // echo: the held call's time is the relay's, not the new server's first API call.
            await wrapped.client.callTool({ name: 'echo', arguments: { text: 'x' } });
          } catch {
            failed++;
          }
          max = Math.max(max, now() - t0);
        }
      })();
      await sleep(200);
      const r = await timeCli(['rotate', '--json'], { env: h.env });
      if (r.code !== 0) throw new Error(`rotate failed: ${r.stderr}`);
      await sleep(1500);
      running = false;
      await loop;
      // The server behind the wrapper now uses the new token.
      const who = await wrapped.client.callTool({ name: 'whoami' });
      if (who.isError) failed++;
      return max;
    };
    // A CLI `rotate` with no daemon (a fresh process doing the whole rotation next to the new
    // server's start), then the same forwarded to a running daemon (warm: the service case).
    const holds = [];
    for (let i = 0; i < rounds; i++) holds.push(await holdRound());
    const daemon = spawn(process.execPath, [...DAEMON_NODE_OPTIONS, CLI, 'daemon'], { env: h.env, stdio: ['ignore', 'pipe', 'ignore'] });
    let dout = '';
    daemon.stdout.on('data', (b) => (dout += b));
    for (let t0 = now(); !dout.includes('daemon started') && now() - t0 < 30_000; ) await sleep(50);
    const daemonHolds = [];
    try {
      for (let i = 0; i < rounds; i++) daemonHolds.push(await holdRound());
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('close', r));
    }

    // 3. idle wrapper: RSS and CPU, against the server it wraps.
    const wrapperPid = wrapped.transport.pid;
    const serverPid = childrenOf(wrapperPid)[0];
    // The floor: an idle bare node, sampled over the same seconds.
    const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { env: h.env, stdio: 'ignore' });
    await sleep(idleSettleMs);
    const rssSamples = { wrapper: [], bare: [] };
    const sampleRss = () => {
      rssSamples.wrapper.push(memOf(wrapperPid).rssKb);
      rssSamples.bare.push(memOf(bare.pid).rssKb);
    };
    sampleRss();
    const c0 = cpuOf(wrapperPid);
    const s0 = serverPid ? cpuOf(serverPid) : null;
    for (let t0 = now(); now() - t0 < idleWindowMs - 1; ) {
      await sleep(Math.min(5000, idleWindowMs - (now() - t0)));
      sampleRss();
    }
    const c1 = cpuOf(wrapperPid);
    const s1 = serverPid ? cpuOf(serverPid) : null;
    const mem = memOf(wrapperPid);
    const smem = serverPid ? memOf(serverPid) : null;
    await wrapped.client.close();
    bare.kill();
    return {
      direct: summarize(d),
      wrapped: summarize(w),
      overheadMs: wrapped50 - direct50,
      start: summarize(starts),
      wrappedStart: summarize(wrappedStarts),
      hold: summarize(holds),
      daemonHold: summarize(daemonHolds),
      failed,
      idle: { wrapperRss: summarize(rssSamples.wrapper), bareRss: summarize(rssSamples.bare), rssKb: mem.rssKb, serverRssKb: smem?.rssKb ?? NaN, cpuSeconds: c1.seconds - c0.seconds, serverCpuSeconds: s1 && s0 ? s1.seconds - s0.seconds : NaN, windowMs: idleWindowMs, clkTck: clockTicks() },
    };
  } finally {
    await h.cleanup();
  }
}
