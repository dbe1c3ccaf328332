import { afterEach, describe, expect, it } from 'vitest';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { brokerWorld, callLoop, LOCAL_SERVER, startClient, type BrokerWorld, type RunningClient, type StdioEntry } from '../helpers/broker.js';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { fingerprint } from '../../src/fingerprint.js';
import { RotationSignal } from '../../src/broker/signal.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { Secret } from '../../src/secret.js';

// Rotations that land while the wrappers are still swapping their server (issue 15, item 2).
// The stand-in server starts slowly (MCP_LOCAL_SERVER_START_MS), so a swap lasts long enough
// for the next rotation to land in it every time, not by luck of timing.
const START_MS = '700';

const api = fakeApiForFile();

let w: BrokerWorld | undefined;
const daemons: SpawnedDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  await w?.close();
  w = undefined;
});

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The wrappers' swaps take START_MS and more: wait until every client is served by the live token. */
async function servedBy(clients: RunningClient[], token: string, email: string): Promise<void> {
  for (const c of clients) {
    const t0 = Date.now();
    for (;;) {
      const r = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
      if (r.content[0]?.text === `${email} ${fingerprint(token)}`) break;
      if (Date.now() - t0 > 15_000) throw new Error(`client still served by ${r.content[0]?.text}`);
      await settle(50);
    }
  }
}

function drainWarnings(d: SpawnedDaemon): unknown[] {
  return d.lines().filter((l) => typeof l.msg === 'string' && l.msg.includes('still had calls in flight'));
}

describe('exec wrappers through rotations back to back (daemon up)', () => {
  it('rotate, rotate, revoke-now with no pause: the later ones land during a swap; 0 failed calls, no drain wait', async () => {
    w = await brokerWorld(api(), 2, { serverEnv: { MCP_LOCAL_SERVER_START_MS: START_MS } });
    const d = spawnDaemon(w.h.env);
    daemons.push(d);
    await d.waitFor((l) => l.msg === 'daemon started');
    const loops = w.clients.map((c) => callLoop(c.client, { slowEvery: 7, slowMs: 50 }));
    await settle(200);
    const t0 = Date.now();
    for (const args of [['rotate', '--json'], ['rotate', '--json'], ['revoke-now', '--yes', '--json']]) {
      const r = await runCli(args, { env: w.h.env });
      expect(r.code, r.stderr).toBe(0);
    }
    const ms = Date.now() - t0;
    const live = w.live();
    await servedBy(w.clients, live, w.email);
    const stats = await Promise.all(loops.map((l) => l.stop()));
    for (const s of stats) {
      expect(s.failures).toEqual([]);
      expect(s.ok).toBeGreaterThan(0);
    }
    // The rotation side never waited out its drain limit (5 s each) for a wrapper mid-swap
    // (it logs this warning when it does; the two later rotations would take 10 s more).
    expect(drainWarnings(d)).toEqual([]);
    expect(ms).toBeLessThan(20_000);
    expect(api().liveTokens(w.email)).toHaveLength(1);
    for (const c of w.clients) expect(c.closed()).toBe(false);
  }, 60_000);

  it('a daemon killed -9 right after the new token is stored, restarted at once: its recovery and the next rotation land during the swap; 0 failed calls', async () => {
    w = await brokerWorld(api(), 2, { serverEnv: { MCP_LOCAL_SERVER_START_MS: START_MS } });
    const crashing = spawnDaemon({ ...w.h.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'after-broker-stored' });
    daemons.push(crashing);
    await crashing.waitFor((l) => l.msg === 'daemon started');
    const loops = w.clients.map((c) => callLoop(c.client));
    await settle(200);
    // The daemon dies mid-rotation (the wrappers have started swapping); the CLI's answer is not the point.
    await runCli(['rotate', '--json'], { env: w.h.env });
    await crashing.stop();
    expect(crashing.child.signalCode).toBe('SIGKILL');
    const d = spawnDaemon(w.h.env);
    daemons.push(d);
    await d.waitFor((l) => l.msg === 'daemon started');
    const r = await runCli(['rotate', '--json'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const live = w.live();
    await servedBy(w.clients, live, w.email);
    const stats = await Promise.all(loops.map((l) => l.stop()));
    for (const s of stats) expect(s.failures).toEqual([]);
    expect(drainWarnings(d)).toEqual([]);
    for (const c of w.clients) expect(c.closed()).toBe(false);
  }, 60_000);
});

describe('broker enable with the daemon already running, then clients, then rotations back to back', () => {
  let h: TempHome | undefined;
  const clients: RunningClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.client.close().catch(() => undefined);
    await h?.cleanup();
    h = undefined;
  });

  it('0 failed calls, no client restarted', async () => {
    const email = `enable-running-${process.pid}@example.com`;
    h = await makeHome(api().url);
    const tok = api().addToken({ email, role: 'editor', ageDays: 10 });
    const files = ['.config/Claude/claude_desktop_config.json', '.cursor/mcp.json'];
    const plain = JSON.stringify({ mcpServers: { certorix: { command: process.execPath, args: [LOCAL_SERVER], env: { CERTORIX_API_TOKEN: tok, CERTORIX_API_URL: api().url, MCP_LOCAL_SERVER_START_MS: START_MS } } } }, null, 2) + '\n';
    for (const rel of files) await h.write(rel, plain);
    const d = spawnDaemon(h.env);
    daemons.push(d);
    await d.waitFor((l) => l.msg === 'daemon started');
    const en = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(en.code, en.stderr).toBe(0);
    for (const rel of files) {
      const text = await h.read(rel);
      expect(findLeaks([tok], [text]), rel).toEqual([]);
      clients.push(await startClient((JSON.parse(text) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix));
    }
    const pids = clients.map((c) => c.pid);
    const loops = clients.map((c) => callLoop(c.client, { slowEvery: 5, slowMs: 50 }));
    await settle(200);
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['rotate', '--json'], { env: h.env });
      expect(r.code, r.stderr).toBe(0);
    }
    const live = api().liveTokens(email);
    expect(live).toHaveLength(1);
    await servedBy(clients, live[0]!.token, email);
    const stats = await Promise.all(loops.map((l) => l.stop()));
    for (const s of stats) expect(s.failures).toEqual([]);
    expect(drainWarnings(d)).toEqual([]);
    expect(clients.map((c) => c.pid)).toEqual(pids);
  }, 60_000);
});

describe('a client started in the middle of a rotation', () => {
  it('its wrapper joins the announced rotation (holds from the start): no call meets the token the regenerate call kills', async () => {
    w = await brokerWorld(api(), 0);
    const { h, slot, entry, email, tok } = w;
    // The rotating process's side, by hand: announce, regenerate, store, stored.
    const signal = new RotationSignal(h.stateDir, [slot], fingerprint(tok), false);
    await signal.announce();
    const connecting = startClient(entry);
    connecting.then((c) => w?.clients.push(c), () => undefined);
    await settle(800);
    // Regenerate: the old token dies at once.
    const fresh = `ctx_live_${Math.random().toString(36).slice(2)}${'N'.repeat(20)}`;
    api().revoke(tok);
    api().addToken({ email, token: fresh });
    // Whatever the client managed to send meanwhile must not have met the dead token.
    const early = await Promise.race([connecting.then(async (c) => (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }>; isError?: boolean }), settle(300).then(() => 'held' as const)]);
    if (early !== 'held') expect(early.isError, early.content[0]?.text).toBeFalsy();
    await new FileTokenStore(h.stateDir).write(slot, new Secret(fresh));
    await signal.stored(fingerprint(fresh));
    const c = await connecting;
    const r = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }>; isError?: boolean };
    expect(r.isError, r.content[0]?.text).toBeFalsy();
    expect(r.content[0]!.text).toBe(`${email} ${fingerprint(fresh)}`);
  }, 30_000);
});
