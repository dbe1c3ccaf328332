import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli } from '../helpers/home.js';
import { callLoop, LOCAL_SERVER, startClient, type RunningClient, type StdioEntry } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

// The whole story with the real commands: plaintext configs, `broker enable`, real clients
// started from what enable wrote, two rotations with 0 failed calls, `broker disable`.
const FILES = { 'claude-desktop': '.config/Claude/claude_desktop_config.json', cursor: '.cursor/mcp.json' } as const;

describe('broker enable -> real clients through two rotations -> broker disable', () => {
  it('0 failed calls, no client restarted, plaintext back with the current token', async () => {
    const email = 'enable-flow@example.com';
    const h = await makeHome(api.url);
    const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
    const clients: RunningClient[] = [];
    try {
      const plain = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: process.execPath, args: [LOCAL_SERVER], env: { CERTORIX_API_TOKEN: t, CERTORIX_API_URL: api.url } } } }, null, 2) + '\n';
      for (const rel of Object.values(FILES)) await h.write(rel, plain(tok));
      const en = await runCli(['broker', 'enable', '--json'], { env: h.env });
      expect(en.code, en.stderr).toBe(0);
      for (const rel of Object.values(FILES)) {
        const text = await h.read(rel);
        expect(findLeaks([tok], [text]), rel).toEqual([]);
        const entry = (JSON.parse(text) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix;
        expect(entry.args).toContain('exec');
        clients.push(await startClient(entry));
      }
      const pids = clients.map((c) => c.pid);
      const loops = clients.map((c) => callLoop(c.client, { slowEvery: 5, slowMs: 100 }));
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < 2; i++) {
        const r = await runCli(['rotate', '--json'], { env: h.env });
        expect(r.code, r.stderr).toBe(0);
        const doc = JSON.parse(r.stdout) as { rotations: Array<{ status: string }> };
        expect(doc.rotations.map((x) => x.status)).toEqual(['rotated']);
        await new Promise((r) => setTimeout(r, 500));
      }
      const stats = await Promise.all(loops.map((l) => l.stop()));
      const live = api.liveTokens(email);
      expect(live).toHaveLength(1);
      const fresh = live[0]!.token;
      expect(fresh).not.toBe(tok);
      for (const s of stats) {
        expect(s.failures).toEqual([]);
        expect(s.fps.has(fingerprint(fresh))).toBe(true);
      }
      expect(clients.map((c) => c.pid)).toEqual(pids);
      for (const c of clients) expect(c.closed()).toBe(false);
      const dis = await runCli(['broker', 'disable', '--json'], { env: h.env });
      expect(dis.code, dis.stderr).toBe(0);
      for (const rel of Object.values(FILES)) expect(await h.read(rel)).toBe(plain(fresh));
    } finally {
      for (const c of clients) await c.client.close().catch(() => undefined);
      await h.cleanup();
    }
  }, 150_000);
});
