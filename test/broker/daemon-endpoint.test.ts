/**
 * The local endpoint as the real daemon serves it (spawned from the build): `broker enable`
 * with the daemon running writes only the URL of a port the daemon already listens on (a
 * client connecting the moment enable returns is served); a recorded port taken while the
 * daemon was down is moved off with new route secrets (status and doctor tell a stranger from
 * the daemon); after a crash the endpoint listens before recovery runs; a converted entry is
 * served to a real SDK client; `broker-token` answers on the control socket.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { startFakeRemote, type FakeRemote } from '../fake/remote-server.js';
import { findLeaks, makeHome, runCli, type CliResult, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { Store } from '../../src/store/store.js';
import { BrokerRegistry } from '../../src/broker/registry.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { Secret } from '../../src/secret.js';
import { fingerprint } from '../../src/fingerprint.js';
import { callDaemon } from '../../src/ipc/client.js';
import { statePaths } from '../../src/paths.js';
import { chmod, stat } from 'node:fs/promises';
import { CAN_SWITCH_USER, FLOOD, NOBODY, ONE_REQUEST, runAsNobody, SKIP_NOTE, SQUATTER } from '../helpers/other-user.js';
import { readdirSync } from 'node:fs';

let api: FakeCertorix;
let remote: FakeRemote;
beforeAll(async () => {
  api = await startFakeCertorix();
  remote = await startFakeRemote(api);
});
afterAll(async () => {
  await remote.close();
  await api.close();
});

let h: TempHome;
let d: SpawnedDaemon | undefined;
afterEach(async () => {
  await d?.stop();
  d = undefined;
  await h?.cleanup();
});

const SLOT = 'certorix-0c0c0c0c';
const SECRET = 'ZGFlbW9uLWVuZHBvaW50LXM';
let seq = 0;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A temp HOME with one converted remote entry: the registry row and the token in the store. */
async function setup(port: number | null): Promise<string> {
  h = await makeHome(api.url);
  await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, ...(port !== null ? { broker: { port } } : {}) });
  const token = api.addToken({ email: `daemon${++seq}@example.com`, role: 'editor' });
  const store = new Store(statePaths(h.stateDir).db);
  const reg = new BrokerRegistry(store);
  const now = new Date().toISOString();
  reg.addSlot(SLOT, fingerprint(token), now);
  reg.addEntry({
    path: h.path('.cursor/mcp.json'),
    client: 'cursor',
    server: 'certorix',
    keyPath: 'mcpServers.certorix',
    kind: 'endpoint',
    slot: SLOT,
    originalText: '{}',
    convertedText: '{}',
    upstreamUrl: remote.mcpUrl,
    routeSecret: SECRET,
    enabledAt: now,
  });
  store.close();
  await new FileTokenStore(h.stateDir).write(SLOT, new Secret(token));
  return token;
}

describe('daemon with the broker endpoint', () => {
  it('serves a converted entry to a real SDK client with the stored token; broker-token and headers go through the daemon', async () => {
    const port = await freePort();
    const token = await setup(port);
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'broker endpoint listening', 15_000);
    const before = remote.seen.length;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/${SECRET}/certorix`));
    const client = new Client({ name: 'cursor-like', version: '1.0.0' });
    await client.connect(transport);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'via daemon' } })).content).toEqual([{ type: 'text', text: 'via daemon' }]);
    await transport.terminateSession();
    await client.close();
    const mine = remote.seen.slice(before);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((s) => s.fingerprint === fingerprint(token) && s.status !== 401)).toBe(true);

    const res = await callDaemon(statePaths(h.stateDir).socket, { method: 'broker-token', params: { slot: SLOT } }, { timeoutMs: 5_000 });
    expect(res).toMatchObject({ ok: true, result: { token } });
    const unknown = await callDaemon(statePaths(h.stateDir).socket, { method: 'broker-token', params: { slot: 'certorix-99999999' } }, { timeoutMs: 5_000 });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'E_BROKER' } });

    const helper = await runCli(['headers', SLOT, '--state-dir', h.stateDir], { env: h.env });
    expect(helper.code).toBe(0);
    expect(helper.stdout).toBe(`{"Authorization":"Bearer ${token}"}`);

    // Wrong secret through the real daemon: 404, nothing upstream.
    const n = remote.seen.length;
    const wrong = await fetch(`http://127.0.0.1:${port}/${'x'.repeat(23)}/certorix`, { method: 'POST', body: '{}' });
    expect(wrong.status).toBe(404);
    expect(remote.seen.length).toBe(n);

    const daemon = d;
    d = undefined;
    expect((await daemon.stop()).code).toBe(0);
    // The daemon's log names routes and statuses, never the token.
    expect(findLeaks([token], [daemon.raw(), helper.stderr])).toEqual([]);
  }, 40_000);
});

// ---- through broker enable, as a user does it

const CURSOR = '.cursor/mcp.json';
const cursorText = (url: string, t: string) => JSON.stringify({ mcpServers: { certorix: { url, headers: { Authorization: `Bearer ${t}` } }, other: { command: 'npx', args: ['-y', 'x'] } } }, null, 2) + '\n';
const ENDPOINT_URL = /"url": "(http:\/\/127\.0\.0\.1:(\d+)\/([A-Za-z0-9_-]+)\/certorix)"/;

/** A Cursor config (0644, as users leave it) with the token in a header; the daemon running; broker enable. */
async function enabled(daemonPrefix?: string[]): Promise<{ token: string; url: string; port: number; secret: string; enable: CliResult; returnedAt: number }> {
  h = await makeHome(api.url);
  await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, broker: { store: 'file' }, mcpHosts: ['127.0.0.1'] });
  const token = api.addToken({ email: `enable${++seq}@example.com`, role: 'editor' });
  await h.write(CURSOR, cursorText(remote.mcpUrl, token), 0o644);
  d = spawnDaemon(h.env, daemonPrefix ? { prefix: daemonPrefix } : {});
  await d.waitFor((l) => l.msg === 'daemon started', 15_000);
  const enable = await runCli(['broker', 'enable'], { env: h.env, timeoutMs: 30_000 });
  const returnedAt = Date.now();
  const m = ENDPOINT_URL.exec(await h.read(CURSOR));
  if (!m) throw new Error(`no endpoint URL in the config after enable:\n${await h.read(CURSOR)}\n${enable.stdout}${enable.stderr}`);
  return { token, url: m[1]!, port: Number(m[2]), secret: m[3]!, enable, returnedAt };
}

async function callOnce(url: string): Promise<unknown> {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'cursor-like', version: '1.0.0' });
  try {
    await client.connect(transport);
    return (await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content;
  } finally {
    await client.close().catch(() => undefined);
  }
}

describe('broker enable with the daemon already running', () => {
  it('the endpoint listens when enable returns: a client connecting at once is served; the config is made private and the user told', async () => {
    const e = await enabled();
    expect(e.enable.code, e.enable.stderr + e.enable.stdout).toBe(0);
    // At once, no waiting: the first request the client sends is served.
    expect(await callOnce(e.url)).toEqual([{ type: 'text', text: 'hi' }]);
    // The daemon bound that port itself, before enable wrote it anywhere.
    const listening = d!.lines().find((l) => l.msg === 'broker endpoint listening' && l.port === e.port);
    expect(listening).toBeDefined();
    const t = listening!.time;
    expect(typeof t === 'number' ? t : Date.parse(String(t))).toBeLessThanOrEqual(e.returnedAt);
    // A route secret is a credential: the 0644 file is now private, and enable said so.
    expect((await stat(h.path(CURSOR))).mode & 0o777).toBe(0o600);
    expect(e.enable.stdout).toContain('route secret');
    expect(e.enable.stdout).toMatch(/mode 0644.*now 0600/);
    // Widened again later: doctor names it.
    await chmod(h.path(CURSOR), 0o644);
    const doc = await runCli(['doctor', '--json'], { env: h.env, timeoutMs: 30_000 });
    expect(doc.stdout).toContain('broker-route-secret-permissions');
  }, 40_000);

  it('the recorded port taken while the daemon was down: status and doctor name the stranger; the daemon moves to a new port with new secrets and rewrites the config', async () => {
    const e = await enabled();
    const before = await h.read(CURSOR);
    const daemon = d!;
    d = undefined;
    await daemon.stop();
    // Another user binds the port while the daemon is down.
    const squatter = CAN_SWITCH_USER ? await runAsNobody(SQUATTER, [String(e.port)]) : null;
    const local: Server | null = squatter ? null : createServer();
    try {
      if (squatter) await squatter.line(/^listening/);
      else await new Promise<void>((r) => local!.listen(e.port, '127.0.0.1', () => r()));

      const st = await runCli(['broker', 'status', '--json'], { env: h.env });
      expect(st.code).toBe(2);
      const stDoc = JSON.parse(st.stdout) as { endpoint: { up: boolean; stranger: boolean; holderUid: number | null } };
      expect(stDoc.endpoint).toMatchObject({ up: false, stranger: true, holderUid: squatter ? NOBODY : process.getuid!() });
      const human = await runCli(['broker', 'status'], { env: h.env });
      expect(human.stdout).toContain('HELD BY ANOTHER PROGRAM');
      const doc = await runCli(['doctor', '--json'], { env: h.env, timeoutMs: 30_000 });
      expect(doc.stdout).toContain('broker-endpoint-stranger');
      if (squatter) {
        // status too: something answers on the port, but it is not this user's socket.
        const plain = await runCli(['status', '--json'], { env: h.env });
        expect(plain.code).toBe(2);
        const probs = (JSON.parse(plain.stdout) as { brokerProblems: Array<{ kind: string; message: string }> }).brokerProblems;
        expect(probs.find((p) => p.kind === 'endpoint-stranger')?.message).toContain(`(uid ${NOBODY})`);
      }

      d = spawnDaemon(h.env);
      await d.waitFor((l) => l.msg === 'daemon started', 20_000);
      const moved = d.lines().find((l) => typeof l.msg === 'string' && l.msg.includes('was taken by another program'));
      expect(moved, d.raw()).toMatchObject({ from: e.port });
      const after = await h.read(CURSOR);
      const m = ENDPOINT_URL.exec(after)!;
      const [newUrl, newPort, newSecret] = [m[1]!, Number(m[2]), m[3]!];
      expect(newPort).not.toBe(e.port);
      expect(newSecret).not.toBe(e.secret);
      // Byte-exact: only the URL changed.
      expect(after).toBe(before.replace(e.url, newUrl));
      expect(moved!.to).toBe(newPort);
      // The new URL is served; the old secret is dead, even on the new port.
      expect(await callOnce(newUrl)).toEqual([{ type: 'text', text: 'hi' }]);
      const n = remote.seen.length;
      const old = await fetch(`http://127.0.0.1:${newPort}/${e.secret}/certorix`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(old.status).toBe(404);
      expect(remote.seen.length).toBe(n);

      const st2 = await runCli(['broker', 'status', '--json'], { env: h.env });
      expect(st2.code, st2.stdout).toBe(0);
      expect(JSON.parse(st2.stdout)).toMatchObject({ endpoint: { port: newPort, up: true, stranger: false, moved: { from: e.port, to: newPort } } });
      const doc2 = await runCli(['doctor', '--json'], { env: h.env, timeoutMs: 30_000 });
      expect(doc2.stdout).toContain('broker-endpoint-moved');
      expect(doc2.stdout).not.toContain('broker-endpoint-stranger');
    } finally {
      await squatter?.stop();
      if (local) await new Promise<void>((r) => local.close(() => r()));
    }
  }, 90_000);

  it('after a crash mid-rotation the endpoint listens before recovery runs', async () => {
    const e = await enabled();
    const daemon = d!;
    d = undefined;
    await daemon.stop();
    // A daemon that dies right after Certorix answered the regenerate call.
    const crashing = spawnDaemon({ ...h.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'after-regenerate-response' });
    await crashing.waitFor((l) => l.msg === 'daemon started', 15_000);
    await runCli(['rotate', '--json'], { env: h.env, timeoutMs: 30_000 });
    expect((await crashing.stop('SIGCONT')).signal).toBe('SIGKILL');

    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started', 20_000);
    const lines = d.lines();
    const listenAt = lines.findIndex((l) => l.msg === 'broker endpoint listening' && l.port === e.port);
    const recoverAt = lines.findIndex((l) => l.msg === 'resuming an unfinished rotation');
    expect(recoverAt, d.raw()).toBeGreaterThan(-1);
    expect(listenAt).toBeGreaterThan(-1);
    expect(listenAt).toBeLessThan(recoverAt);
    expect(await callOnce(e.url)).toEqual([{ type: 'text', text: 'hi' }]);
  }, 60_000);
});

// Linux, for real: another uid on the same machine (as root: uid 65534 through setpriv).
const asOther = CAN_SWITCH_USER ? it : it.skip;
const note = CAN_SWITCH_USER ? '' : ` (${SKIP_NOTE})`;

describe('other users on this machine', () => {
  asOther(`another uid holding the route secret is refused at connect; the user is served${note}`, async () => {
    const e = await enabled();
    const n = remote.seen.length;
    const other = await runAsNobody(ONE_REQUEST, [e.url]);
    try {
      const got = await other.line(/^(status|error)/);
      expect(got).toMatch(/^error /);
    } finally {
      await other.stop();
    }
    expect(remote.seen.length).toBe(n);
    expect(await callOnce(e.url)).toEqual([{ type: 'text', text: 'hi' }]);
    await d!.waitFor((l) => l.msg === 'broker endpoint refused connections' && l.reason === 'other-user' && l.peerUid === NOBODY, 5_000);
  }, 40_000);

  asOther(`a flood of idle connections from another uid: the daemon keeps its file descriptors, rotate through it works, the user is served${note}`, async () => {
    // The daemon with the usual 1024 open files: 1500 held connections would exhaust it.
    const e = await enabled(['prlimit', '--nofile=1024:1024']);
    const flood = await runAsNobody(FLOOD, [String(e.port), '1500']);
    try {
      await flood.line(/^done /, 60_000);
      // Every connection of the other uid is closed by the daemon (none held open).
      const t0 = Date.now();
      let last = '';
      while (Date.now() - t0 < 15_000) {
        last = flood.output().trim().split('\n').pop() ?? '';
        if (/ open=0$/.test(last)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(last).toMatch(/ open=0$/);
      const fds = readdirSync(`/proc/${d!.child.pid}/fd`).length;
      expect(fds).toBeLessThan(200);
      const r = await runCli(['rotate', '--json'], { env: h.env, timeoutMs: 40_000 });
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).not.toContain('No tracked token');
      await d!.waitFor((l) => l.msg === 'rotation finished', 10_000);
      expect(await callOnce(e.url)).toEqual([{ type: 'text', text: 'hi' }]);
    } finally {
      await flood.stop();
    }
  }, 120_000);
});
