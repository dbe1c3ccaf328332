import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { callLoop, convertedHome, startClient, type RunningClient } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome | undefined;
const clients: RunningClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close().catch(() => undefined);
  await h?.cleanup();
  h = undefined;
});

let seq = 0;
async function setup(n = 2) {
  const email = `broker${++seq}@example.com`;
  h = await makeHome(api.url);
  const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
  const { slot, entry } = await convertedHome(h, tok, api.url);
  for (let i = 0; i < n; i++) clients.push(await startClient(entry));
  return { email, tok, slot, entry };
}

function liveToken(email: string): string {
  const live = api.liveTokens(email);
  expect(live).toHaveLength(1);
  return live[0]!.token;
}

describe('exec wrapper with real SDK clients', () => {
  it('serves calls with the token from the store, and nothing else on stdout', async () => {
    const { email, tok } = await setup(1);
    const c = clients[0]!;
    const r = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
    expect(r.content[0]!.text).toBe(`${email} ${fingerprint(tok)}`);
    expect(c.stderr()).not.toContain(tok);
  });

  it('rotate (CLI, no daemon): 0 failed calls, clients never restarted, servers on the new token', async () => {
    const { email, tok } = await setup(2);
    const pids = clients.map((c) => c.pid);
    const loops = clients.map((c) => callLoop(c.client, { slowEvery: 7, slowMs: 150 }));
    await new Promise((r) => setTimeout(r, 300));
    for (let round = 0; round < 2; round++) {
      const r = await runCli(['rotate', '--json'], { env: h!.env });
      expect(r.code, r.stderr).toBe(0);
      await new Promise((r) => setTimeout(r, 700));
    }
    const stats = await Promise.all(loops.map((l) => l.stop()));
    const fresh = liveToken(email);
    expect(fresh).not.toBe(tok);
    for (const s of stats) {
      expect(s.failures).toEqual([]);
      expect(s.ok).toBeGreaterThan(10);
      expect(s.fps.has(fingerprint(fresh))).toBe(true);
    }
    for (const c of clients) {
      expect(c.closed()).toBe(false);
      const r = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
      expect(r.content[0]!.text).toBe(`${email} ${fingerprint(fresh)}`);
    }
    expect(clients.map((c) => c.pid)).toEqual(pids);
    // No token value in the config or the state files but the store file.
    const files = await h!.stateFiles();
    for (const f of files) if (!f.file.endsWith('broker-tokens.json')) expect(f.bytes.toString('latin1')).not.toContain(fresh);
  }, 60_000);
});
