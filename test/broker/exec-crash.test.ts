import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type TempHome } from '../helpers/home.js';
import { brokerWorld, callLoop, startClient, type BrokerWorld, type RunningClient } from '../helpers/broker.js';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { callDaemon } from '../../src/ipc/client.js';
import { statePaths } from '../../src/paths.js';
import { fingerprint } from '../../src/fingerprint.js';

// revoke-now through the daemon, and a CLI SIGKILLed mid-rotation (src/rotation/failpoints.ts), with wrappers running.
const api = fakeApiForFile();

let w: BrokerWorld | undefined;
let h: TempHome | undefined;
let clients: RunningClient[] = [];
let setupSlot = '';
afterEach(async () => {
  await w?.close();
  w = undefined;
  h = undefined;
});

async function setup(n: number) {
  w = await brokerWorld(api(), n);
  h = w.h;
  clients = w.clients;
  setupSlot = w.slot;
  return w;
}

function liveToken(_email: string): string {
  return w!.live();
}

describe('exec wrappers through revoke-now and crashed rotations', () => {
  it('revoke-now through the daemon: 0 failed calls; wrappers started while the daemon runs get the token from it', async () => {
    const { email, tok, entry } = await setup(1);
    const d = spawnDaemon(h!.env);
    try {
      await d.waitFor((l) => l.msg === 'daemon started');
      // What a wrapper asks the daemon (it has the full session environment; the wrapper may not).
      const got = await callDaemon(statePaths(h!.stateDir).socket, { method: 'broker-token', params: { slot: setupSlot } }, { timeoutMs: 5000 });
      expect(got).toMatchObject({ ok: true, result: { token: tok } });
      const unknown = await callDaemon(statePaths(h!.stateDir).socket, { method: 'broker-token', params: { slot: 'certorix-00000000' } }, { timeoutMs: 5000 });
      expect(unknown).toMatchObject({ ok: false, error: { code: 'E_BROKER' } });
      // This one asks the daemon (over the control socket) for its first token.
      clients.push(await startClient(entry));
      const loops = clients.map((c) => callLoop(c.client));
      await new Promise((r) => setTimeout(r, 300));
      const r = await runCli(['revoke-now', '--yes', '--json'], { env: h!.env });
      expect(r.code, r.stderr).toBe(0);
      await new Promise((r) => setTimeout(r, 700));
      const stats = await Promise.all(loops.map((l) => l.stop()));
      const fresh = liveToken(email);
      expect(fresh).not.toBe(tok);
      for (const s of stats) {
        expect(s.failures).toEqual([]);
        expect(s.fps.has(fingerprint(fresh))).toBe(true);
      }
      for (const c of clients) expect(c.closed()).toBe(false);
    } finally {
      await d.stop();
    }
  }, 150_000);

  it('a CLI killed right after the new token is journaled: the next command stores it and the wrappers swap', async () => {
    const { email, tok } = await setup(1);
    const c = clients[0]!;
    const r = await runCli(['rotate'], { env: { ...h!.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'after-new-token' } });
    expect(r.code).toBeNull(); // SIGKILLed
    const fresh = liveToken(email);
    expect(fresh).not.toBe(tok);
    // The old token is dead and the new one only in the journal: calls fail until recovery.
    const s = await runCli(['scan', '--offline', '--json'], { env: h!.env });
    expect(s.stderr).toContain('Finished an interrupted rotation');
    const t0 = Date.now();
    let text = '';
    while (Date.now() - t0 < 20_000) {
      const res = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }>; isError?: boolean };
      text = res.content[0]!.text;
      if (!res.isError) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toBe(`${email} ${fingerprint(fresh)}`);
    expect(c.closed()).toBe(false);
  }, 150_000);

  it('a CLI killed right after the store step: the wrappers already serve the new token', async () => {
    const { email, tok } = await setup(1);
    const c = clients[0]!;
    const loop = callLoop(c.client);
    await new Promise((r) => setTimeout(r, 200));
    const r = await runCli(['rotate'], { env: { ...h!.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'after-broker-stored' } });
    expect(r.code).toBeNull();
    await new Promise((r) => setTimeout(r, 500));
    const stats = await loop.stop();
    expect(stats.failures).toEqual([]);
    const fresh = liveToken(email);
    expect(fresh).not.toBe(tok);
    expect(stats.fps.has(fingerprint(fresh))).toBe(true);
    const s = await runCli(['scan', '--offline', '--json'], { env: h!.env });
    expect(s.stderr).toContain('Finished an interrupted rotation');
    const res = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
    expect(res.content[0]!.text).toBe(`${email} ${fingerprint(fresh)}`);
  }, 150_000);
});
