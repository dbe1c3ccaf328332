import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { runCli, type TempHome } from '../helpers/home.js';
import { brokerWorld, callLoop, type BrokerWorld, type RunningClient } from '../helpers/broker.js';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { fingerprint } from '../../src/fingerprint.js';

const api = fakeApiForFile();

let w: BrokerWorld | undefined;
let h: TempHome | undefined;
let clients: RunningClient[] = [];
afterEach(async () => {
  await w?.close();
  w = undefined;
  h = undefined;
});

async function setup(n = 2) {
  w = await brokerWorld(api(), n);
  h = w.h;
  clients = w.clients;
  return w;
}

function liveToken(_email: string): string {
  return w!.live();
}

describe('exec wrapper with real SDK clients', () => {
  it('serves calls with the token from the store, and nothing else on stdout', async () => {
    const { email, tok } = await setup(1);
    const c = clients[0]!;
    const r = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
    expect(r.content[0]!.text).toBe(`${email} ${fingerprint(tok)}`);
    expect(c.stderr()).not.toContain(tok);
    // Closing the client ends the wrapper and the server behind it: no orphan.
    if (process.platform === 'linux') {
      const wrapper = c.pid as number;
      const kids = readdirSync(`/proc/${wrapper}/task`).flatMap((t) => readFileSync(`/proc/${wrapper}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
      expect(kids).toHaveLength(1);
      await c.client.close();
      const gone = (pid: number) => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      const t0 = Date.now();
      while (!(gone(kids[0]!) && gone(wrapper)) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
      expect(gone(kids[0]!)).toBe(true);
      expect(gone(wrapper)).toBe(true);
    }
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
  }, 150_000);

  it('set-token (adopting a token made in the web UI): 0 failed calls, servers on the adopted token', async () => {
    const { email, tok } = await setup(2);
    const loops = clients.map((c) => callLoop(c.client));
    await new Promise((r) => setTimeout(r, 300));
    // A second token of the same account, as "Regenerate" in the web UI would give (the old one
    // stays live here so that every failure counted is the wrapper's).
    const adopted = api().addToken({ email, role: 'editor', ageDays: 0 });
    const r = await runCli(['set-token', '--fingerprint', fingerprint(tok), '--json'], { env: h!.env, input: adopted + '\n' });
    expect(r.code, r.stderr).toBe(0);
    api().revoke(tok);
    await new Promise((r) => setTimeout(r, 500));
    const stats = await Promise.all(loops.map((l) => l.stop()));
    for (const s of stats) {
      expect(s.failures).toEqual([]);
      expect(s.fps.has(fingerprint(adopted))).toBe(true);
    }
    for (const c of clients) {
      const res = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }> };
      expect(res.content[0]!.text).toBe(`${email} ${fingerprint(adopted)}`);
      expect(c.closed()).toBe(false);
    }
  }, 150_000);

});
