// Broker mode's remote side: the daemon's local endpoint and the `headers` helper.
//  - overhead: an MCP tools/call through the endpoint (the real daemon, spawned) against the
//    same client calling the stand-in remote server directly, interleaved call by call. The
//    remote runs in a process of its own (remote-child.mjs), as a user's remote server does:
//    with it in the bench's own process, a direct call never leaves that process (client and
//    server share one event loop: no wake-up of another process at all), while a call through
//    the endpoint crosses processes twice more than it would on a user's machine. That former
//    method is still measured, as an info row;
//  - hold: how long a call sent during a rotation is delayed, against the rotation's own
//    duration (announce -> stored), in-process with the executor's steps simulated
//    (announce, regenerate at the fake API, store write, stored);
//  - idle RSS of the daemon with the endpoint listening, against a bare node process that
//    has loaded undici (the floor: undici alone is about 20 MiB);
//  - the headers helper: a cold CLI start plus a store read, against `node -e ''`.
import { spawn, execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { makeHome } from './home.mjs';
import { memOf, cpuOf } from './proc.mjs';
import { now, sleep, summarize, quantile } from './stats.mjs';

const d = (p) => new URL(`../../dist/${p}`, import.meta.url);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = fileURLToPath(d('src/cli/main.js'));
const { startFakeCertorix } = await import(d('test/fake/certorix.js'));
const { startFakeRemote } = await import(d('test/fake/remote-server.js'));
const { Store } = await import(d('src/store/store.js'));
const { BrokerRegistry } = await import(d('src/broker/registry.js'));
const { FileTokenStore } = await import(d('src/broker/store.js'));
const { Secret } = await import(d('src/secret.js'));
const { fingerprint } = await import(d('src/fingerprint.js'));
const { brokerBus } = await import(d('src/broker/events.js'));
const { SlotTokens } = await import(d('src/broker/endpoint/tokens.js'));
const { startEndpoint } = await import(d('src/broker/endpoint/server.js'));
const { createLogger } = await import(d('src/log.js'));
// The daemon is started the way the service unit starts it (ExecStart / ProgramArguments).
const { DAEMON_NODE_OPTIONS } = await import(d('src/service/render.js'));
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');

const SLOT = 'certorix-bbbbbbbb';
const SLOT_IN = 'certorix-cccccccc';
const SECRET_IN = 'YmVuY2gtaW4tcHJvY2Vzcy1y';
/** 8 client configs + 54 project configs = the 62 configs of issue 18's row. */
export const NO_BROKER_PROJECTS = 54;
const SECRET = 'YmVuY2gtZW5kcG9pbnQtc2Vj';

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function waitForLine(child, pred, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buf = '';
    let all = '';
    const t = setTimeout(() => reject(new Error(`no matching line in ${timeoutMs} ms:\n${all}`)), timeoutMs);
    child.stderr.on('data', (x) => (all += x));
    child.stdout.on('data', (x) => {
      buf += x;
      all += x;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const o = JSON.parse(line);
          if (pred(o)) {
            clearTimeout(t);
            resolve(o);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    child.once('exit', (c) => reject(new Error(`exited ${c}:\n${all}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function connect(url, bearer) {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), bearer ? { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } } : undefined);
  await client.connect(transport);
  return { client, transport };
}

async function timeCall(client, text) {
  const t = now();
  await client.callTool({ name: 'echo', arguments: { text } });
  return now() - t;
}

/**
 * A HOME with converted remote entries (registry row + token in the store) and the endpoint's
 * port: `main` ({apiUrl, mcpUrl, token}) at SECRET, and `extra` (same shape) at SECRET_IN.
 */
async function brokerHome(main, port, extra = null) {
  const h = await makeHome({ token: main.token, clients: false, apiUrl: main.apiUrl, settings: { broker: { port } } });
  const store = new Store(h.db);
  const reg = new BrokerRegistry(store);
  const at = new Date().toISOString();
  const entries = [[SLOT, SECRET, main, 'certorix']];
  if (extra) entries.push([SLOT_IN, SECRET_IN, extra, 'certorix-in']);
  for (const [slot, secret, r, server] of entries) {
    reg.addSlot(slot, fingerprint(r.token), at);
    reg.addEntry({ path: `${h.home}/.cursor/mcp.json`, client: 'cursor', server, keyPath: `mcpServers.${server}`, kind: 'endpoint', slot, originalText: '{}', convertedText: '{}', upstreamUrl: r.mcpUrl, routeSecret: secret, enabledAt: at });
  }
  store.close();
  for (const [slot, , r] of entries) await new FileTokenStore(h.stateDir).write(slot, new Secret(r.token));
  return { h, token: main.token };
}

/** The stand-in remote in its own process (see the head of this file), or another child that prints one JSON line. */
async function remoteProcess(script = './remote-child.mjs', args = []) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (x) => {
      buf += x;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(JSON.parse(buf.slice(0, i)));
    });
    child.once('exit', (c) => reject(new Error(`the remote's process exited ${c}`)));
  });
  return { ...info, child, close: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.stdin.end()))) };
}

const inProcess = (api, remote) => ({ apiUrl: api.url, mcpUrl: remote.mcpUrl, token: api.addToken({ email: `bench-${randomUUID()}@example.com`, role: 'editor' }) });

export async function measureEndpoint({ calls = 400, warmup = 50, holdRounds = 11, settleMs = 15_000, helperRuns = 15 } = {}) {
  const api = await startFakeCertorix();
  const remote = await startFakeRemote(api);
  const port = await freePort();
  const outside = await remoteProcess();
  const local = inProcess(api, remote);
  const { h, token } = await brokerHome(outside, port, local);
  // A daemon without broker mode watching 62 configs (the 8 client files and 54 project
  // files; they hold a token, so it loads undici for the API checks like the other).
  const plain = await makeHome({ token: api.addToken({ email: `plain-${randomUUID()}@example.com` }), apiUrl: api.url, projects: NO_BROKER_PROJECTS });
  // A/B in the same run: the same two daemons started without the service's node options.
  const portB = await freePort();
  const { h: hB } = await brokerHome(inProcess(api, remote), portB);
  const plainB = await makeHome({ token: api.addToken({ email: `plain-${randomUUID()}@example.com` }), apiUrl: api.url, projects: NO_BROKER_PROJECTS });
  // As on a user's machine: the service is installed (install-service, broker enable) by CLI
  // commands that validate the settings file first and cache the result by its content
  // (src/config/settings.ts, fileSchemaCache), so the daemon's start reads the cache and does
  // not load zod. One offline CLI command per HOME plays that part.
  const validated = (home) => new Promise((resolve) => execFile(process.execPath, [CLI, 'status', '--json'], { env: home.env }, () => resolve()));
  await Promise.all([h, plain, hB, plainB].map(validated));
  const out = {};
  const procs = [];
  try {
    const daemonAt = (home, opts) => spawn(process.execPath, [...opts, CLI, 'daemon'], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = daemonAt(h, DAEMON_NODE_OPTIONS);
    procs.push(daemon);
    const noBroker = daemonAt(plain, DAEMON_NODE_OPTIONS);
    procs.push(noBroker);
    const daemonB = daemonAt(hB, []);
    procs.push(daemonB);
    const noBrokerB = daemonAt(plainB, []);
    procs.push(noBrokerB);
    // The floor: a bare node that loaded undici, started at the same time.
    const bare = spawn(process.execPath, ['-e', "require('undici');setInterval(()=>{},1e9)"], { cwd: ROOT, env: h.env, stdio: 'ignore' });
    procs.push(bare);
    await Promise.all([
      waitForLine(daemon, (o) => o.msg === 'broker endpoint listening', 30_000),
      waitForLine(noBroker, (o) => o.msg === 'daemon started', 30_000),
      waitForLine(daemonB, (o) => o.msg === 'broker endpoint listening', 30_000),
      waitForLine(noBrokerB, (o) => o.msg === 'daemon started', 30_000),
    ]);

    // ---- idle RSS: sampled over a few seconds after the settle, before any traffic
    await sleep(settleMs);
    const samples = { daemon: [], noBroker: [], daemonB: [], noBrokerB: [], bare: [] };
    const who = { daemon, noBroker, daemonB, noBrokerB, bare };
    for (let i = 0; i < 5; i++) {
      for (const [k, p] of Object.entries(who)) samples[k].push(memOf(p.pid).rssKb);
      await sleep(1000);
    }
    out.rss = { ...Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)])), settleMs, noBrokerConfigs: plain.files.length, nodeOptions: DAEMON_NODE_OPTIONS.join(' ') };
    for (const p of [daemonB, noBrokerB]) await stop(p);

    // ---- overhead: interleaved direct / via-endpoint calls on long-lived sessions, to the
    // remote in its own process and (the former method, info) to the one in this process
    const direct = await connect(outside.mcpUrl, token);
    const via = await connect(`http://127.0.0.1:${port}/${SECRET}/certorix`);
    const directIn = await connect(local.mcpUrl, local.token);
    const viaIn = await connect(`http://127.0.0.1:${port}/${SECRET_IN}/certorix-in`);
    const t = { dt: [], vt: [], di: [], vi: [] };
    // The daemon's CPU over the loop, per call it served (via and via-in): how much of the
    // overhead is its own work, and how much the extra process hop (wake-ups).
    const cpu0 = cpuOf(daemon.pid);
    for (let i = 0; i < warmup + calls; i++) {
      const a = await timeCall(direct.client, `d${i}`);
      const b = await timeCall(via.client, `v${i}`);
      const c = await timeCall(directIn.client, `di${i}`);
      const e = await timeCall(viaIn.client, `vi${i}`);
      if (i >= warmup) {
        t.dt.push(a);
        t.vt.push(b);
        t.di.push(c);
        t.vi.push(e);
      }
    }
    const cpu1 = cpuOf(daemon.pid);
    for (const c of [via, directIn, viaIn]) await c.client.close();
    // The reference, in a loop of its own after (a fifth process in the loop above would make
    // every call's processes colder): a bare node:http proxy in its own process
    // (proxy-child.mjs) on the same remote, interleaved with direct calls as above.
    const proxy = await remoteProcess('./proxy-child.mjs', [outside.mcpUrl, token]);
    procs.push(proxy.child);
    const viaProxy = await connect(`http://127.0.0.1:${proxy.port}/mcp`);
    const r = { d: [], p: [] };
    for (let i = 0; i < warmup + calls; i++) {
      const a = await timeCall(direct.client, `rd${i}`);
      const b = await timeCall(viaProxy.client, `rp${i}`);
      if (i >= warmup) {
        r.d.push(a);
        r.p.push(b);
      }
    }
    for (const c of [direct, viaProxy]) await c.client.close();
    await proxy.close();
    const q = (v) => {
      const s = [...v].sort((x, y) => x - y);
      return { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
    };
    out.overhead = { direct: q(t.dt), via: q(t.vt), n: calls, daemonCpuMsPerCall: ((cpu1.seconds - cpu0.seconds) * 1000) / (2 * (warmup + calls)) };
    out.overheadInProcessRemote = { direct: q(t.di), via: q(t.vi), n: calls };
    out.overheadNodeHttpProxy = { direct: q(r.d), via: q(r.p), n: calls };
    out.rss.afterTraffic = memOf(daemon.pid).rssKb;
  } finally {
    for (const p of procs) await stop(p);
    await outside.close();
  }

  // ---- hold during a rotation (in-process: the bus is the daemon's own)
  out.hold = await measureHold(api, remote, holdRounds);

  // ---- headers helper: cold start + store read, against node -e ''
  out.helper = await measureHelper(h, helperRuns);

  await remote.close();
  await api.close();
  await h.cleanup();
  await plain.cleanup();
  await hB.cleanup();
  await plainB.cleanup();
  return out;
}

async function measureHold(api, remote, rounds) {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${process.env.BENCH_TMPDIR || tmpdir()}/mtr-bench-hold-`);
  const store = new FileTokenStore(dir);
  let current = api.addToken({ email: `hold-${randomUUID()}@example.com`, role: 'editor' });
  await store.write(SLOT, new Secret(current));
  const tokens = new SlotTokens(store);
  const log = createLogger({ level: 'warn', sink: { write: () => undefined } });
  const ep = await startEndpoint({ port: 0, lookup: (s) => (s === SECRET ? { name: 'certorix', slot: SLOT, upstreamUrl: remote.mcpUrl } : null), tokens, log });
  const { client } = await connect(`${ep.origin}/${SECRET}/certorix`);
  // The endpoint's own cost, without a second process to schedule: the same endpoint code
  // in this process, against the same client calling the remote directly.
  const direct = await connect(remote.mcpUrl, current);
  const dIn = [];
  const vIn = [];
  for (let i = 0; i < 250; i++) {
    const a = await timeCall(direct.client, `d${i}`);
    const b = await timeCall(client, `v${i}`);
    if (i >= 50) {
      dIn.push(a);
      vIn.push(b);
    }
  }
  await direct.client.close();
  const base = [];
  for (let i = 0; i < 30; i++) base.push(await timeCall(client, `b${i}`));
  const baseline = summarize(base.slice(10)).median;
  const delays = [];
  const durations = [];
  let gen = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      const g = ++gen;
      const old = current;
      const t0 = now();
      brokerBus.emit('event', { type: 'announce', generation: g, slots: [SLOT], fingerprint: fingerprint(old), revoke: false });
      // A call sent right after the announcement: held until the new token is stored.
      const held = timeCall(client, `h${r}`);
      const res = await globalThis.fetch(`${api.url}/v1/token/regenerate`, { method: 'POST', headers: { authorization: `Bearer ${old}`, 'idempotency-key': randomUUID(), 'user-agent': 'bench (MCP)' } });
      current = (await res.json()).token;
      await store.write(SLOT, new Secret(current));
      brokerBus.emit('event', { type: 'stored', generation: g, slots: [SLOT], fingerprint: fingerprint(old), newFingerprint: fingerprint(current) });
      durations.push(now() - t0);
      delays.push((await held) - baseline);
      await sleep(50);
    }
  } finally {
    await client.close();
    await ep.close();
    tokens.close();
    await rm(dir, { recursive: true, force: true });
  }
  return { delay: summarize(delays), rotation: summarize(durations), baseline, inProcess: { direct: summarize(dIn), via: summarize(vIn) } };
}

function runOnce(args, env) {
  return new Promise((resolve, reject) => {
    const t = now();
    execFile(process.execPath, args, { env }, (e, stdout) => (e ? reject(e) : resolve({ ms: now() - t, stdout })));
  });
}

async function measureHelper(h, runs) {
  const helper = [];
  const node = [];
  for (let i = 0; i < runs; i++) {
    node.push((await runOnce(['-e', ''], h.env)).ms);
    const r = await runOnce([CLI, 'headers', SLOT, '--state-dir', h.stateDir], h.env);
    if (!r.stdout.startsWith('{"Authorization":"Bearer ')) throw new Error('headers printed something else');
    helper.push(r.ms);
  }
  return { helper: summarize(helper), node: summarize(node) };
}
