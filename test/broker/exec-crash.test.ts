import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { runCli, type TempHome } from '../helpers/home.js';
import { brokerWorld, callLoop, type BrokerWorld, type RunningClient } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';

// A CLI SIGKILLed mid-rotation (src/rotation/failpoints.ts) with wrappers running.
let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let w: BrokerWorld | undefined;
let h: TempHome | undefined;
let clients: RunningClient[] = [];
afterEach(async () => {
  await w?.close();
  w = undefined;
  h = undefined;
});

async function setup(n: number) {
  w = await brokerWorld(api, n);
  h = w.h;
  clients = w.clients;
  return w;
}

function liveToken(_email: string): string {
  return w!.live();
}

describe('exec wrappers through a crashed rotation', () => {
  it('a CLI killed right after the new token is journaled: the next command stores it and the wrappers swap', async () => {
    const { email, tok } = await setup(1);
    const c = clients[0]!;
    const r = await runCli(['rotate'], { env: { ...h!.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'after-new-token' } });
    expect(r.code).toBeNull(); // SIGKILLed
    const fresh = liveToken(email);
    expect(fresh).not.toBe(tok);
    // The old token is dead and the new one only in the journal: calls fail until recovery.
    const s = await runCli(['status', '--json'], { env: h!.env });
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
  }, 60_000);

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
    const s = await runCli(['status', '--json'], { env: h!.env });
    expect(s.stderr).toContain('Finished an interrupted rotation');
    const res = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
    expect(res.content[0]!.text).toBe(`${email} ${fingerprint(fresh)}`);
  }, 60_000);
});
