/**
 * The local endpoint as the real daemon serves it (spawned from the build): a taken port
 * fails the start loudly; a converted entry recorded in the registry is served to a real SDK
 * client; `broker-token` answers on the control socket and `headers` uses it; a port chosen
 * by `broker enable` while the daemon runs is picked up without a restart.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { startFakeRemote, type FakeRemote } from '../fake/remote-server.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { Store } from '../../src/store/store.js';
import { BrokerRegistry } from '../../src/broker/registry.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { Secret } from '../../src/secret.js';
import { fingerprint } from '../../src/fingerprint.js';
import { callDaemon } from '../../src/ipc/client.js';
import { statePaths } from '../../src/paths.js';

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
  it('fails loudly at start when the port is taken, naming the port and the fix', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const { port } = blocker.address() as AddressInfo;
    try {
      await setup(port);
      d = spawnDaemon(h.env);
      // SIGCONT changes nothing: this waits for the daemon to exit on its own.
      const r = await d.stop('SIGCONT');
      expect(r.code).toBe(2);
      const out = d.raw();
      expect(out).toContain(`127.0.0.1:${port}`);
      expect(out).toMatch(/taken/);
      expect(out).toContain('broker');
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

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

  it('a port recorded by "broker enable" while the daemon runs is served without a restart', async () => {
    await setup(null);
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started', 15_000);
    const port = await freePort();
    const store = new Store(statePaths(h.stateDir).db);
    store.setMeta('broker.port', String(port));
    store.close();
    await d.waitFor((l) => l.msg === 'broker endpoint listening' && l.port === port, 10_000);
    const r = await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource`);
    expect(r.status).toBe(404);
  }, 30_000);
});
