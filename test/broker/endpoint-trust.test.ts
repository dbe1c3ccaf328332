/**
 * The local endpoint through a user's whole week, with the spawned daemon and real SDK
 * clients (Streamable HTTP) started from converted Cursor and VS Code entries:
 * `broker enable` while the daemon ALREADY runs (the clients connect the moment it returns),
 * two rotations back to back, the daemon killed (-9) and started again, then `revoke-now`
 * (which renews the route secrets too). Every call succeeds, except while the daemon is dead;
 * once it is back (and its recovery has run) not one call fails. After revoke-now the configs
 * hold new URLs: a new client from them is served, the old URL opens nothing new.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stat } from 'node:fs/promises';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { startFakeRemote, type FakeRemote } from '../fake/remote-server.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';

let api: FakeCertorix;
let remote: FakeRemote;
beforeAll(async () => {
  api = await startFakeCertorix();
  remote = await startFakeRemote(api);
});
afterAll(async () => {
  await remote?.close();
  await api?.close();
});

const FILES = {
  cursor: { rel: '.cursor/mcp.json', text: (url: string, t: string) => JSON.stringify({ mcpServers: { certorix: { url, headers: { Authorization: `Bearer ${t}` } } } }, null, 2) + '\n' },
  vscode: {
    rel: '.config/Code/User/mcp.json',
    text: (url: string, t: string) => `// VS Code MCP servers\n{\n  "servers": {\n    "certorix": {\n      "type": "http",\n      "url": "${url}",\n      "headers": { "Authorization": "Bearer ${t}" },\n    },\n  },\n}\n`,
  },
};
const URL_RE = /"url": "(http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]+\/certorix)"/;

interface Loop {
  stop(): Promise<{ ok: number; failures: Array<{ startedAt: number; msg: string }> }>;
}

/** One real SDK client calling without pause; every failure with when its call started. */
function callLoop(name: string, client: Client, email: string): Loop {
  let running = true;
  let ok = 0;
  const failures: Array<{ startedAt: number; msg: string }> = [];
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const startedAt = Date.now();
      try {
        const r = (await client.callTool(i % 2 ? { name: 'whoami' } : { name: 'echo', arguments: { text: `${name}${i}` } })) as { content: Array<{ text?: string }>; isError?: boolean };
        const want = i % 2 ? email : `${name}${i}`;
        if (r.isError || r.content[0]?.text !== want) failures.push({ startedAt, msg: `${name}: ${r.content[0]?.text ?? ''}` });
        else ok++;
      } catch (e) {
        failures.push({ startedAt, msg: `${name}: ${(e as Error).message}` });
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failures };
    },
  };
}

async function connect(url: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'trust-e2e', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

describe('endpoint clients through enable (daemon running), two back-to-back rotations, kill -9 and restart, revoke-now', () => {
  it('0 failed calls once the daemon is back; revoke-now renews the route secrets without failing a running client', async () => {
    const email = 'trust-e2e@example.com';
    const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
    const h: TempHome = await makeHome(api.url);
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 5000, broker: { store: 'file' }, mcpHosts: ['127.0.0.1'] });
    for (const f of Object.values(FILES)) await h.write(f.rel, f.text(remote.mcpUrl, tok), 0o644);
    let d: SpawnedDaemon | undefined;
    const clients: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
    const loops: Loop[] = [];
    const outputs: string[] = [];
    try {
      d = spawnDaemon(h.env);
      await d.waitFor((l) => l.msg === 'daemon started', 20_000);

      const en = await runCli(['broker', 'enable'], { env: h.env, timeoutMs: 30_000 });
      // The moment enable returns: clients start from the converted entries.
      const urls: string[] = [];
      for (const f of Object.values(FILES)) {
        const m = URL_RE.exec(await h.read(f.rel));
        expect(m, `${f.rel}: ${en.stdout}${en.stderr}`).not.toBeNull();
        urls.push(m![1]!);
      }
      for (const u of urls) clients.push(await connect(u));
      expect(en.code, en.stderr).toBe(0);
      outputs.push(en.stdout, en.stderr);
      for (const f of Object.values(FILES)) expect((await stat(h.path(f.rel))).mode & 0o777, f.rel).toBe(0o600);
      clients.forEach((c, i) => loops.push(callLoop(`c${i}-`, c.client, email)));
      await new Promise((r) => setTimeout(r, 300));

      // Two rotations back to back.
      for (let i = 0; i < 2; i++) {
        const r = await runCli(['rotate', '--json'], { env: h.env, timeoutMs: 40_000 });
        expect(r.code, r.stderr).toBe(0);
        outputs.push(r.stdout, r.stderr);
      }
      await new Promise((r) => setTimeout(r, 300));

      // kill -9, then a new daemon (as the service manager would start it).
      const killAt = Date.now();
      d.child.kill('SIGKILL');
      await d.stop('SIGCONT');
      outputs.push(d.raw());
      await new Promise((r) => setTimeout(r, 300));
      d = spawnDaemon(h.env);
      await d.waitFor((l) => l.msg === 'daemon started', 20_000);
      const backAt = Date.now();
      await new Promise((r) => setTimeout(r, 500));

      const rv = await runCli(['revoke-now', '--yes', '--json'], { env: h.env, timeoutMs: 40_000 });
      expect(rv.code, rv.stderr + rv.stdout).toBe(0);
      expect(rv.stdout + rv.stderr).toContain('route secrets were renewed');
      outputs.push(rv.stdout, rv.stderr);
      await new Promise((r) => setTimeout(r, 1000));

      const stats = await Promise.all(loops.splice(0).map((l) => l.stop()));
      for (const s of stats) {
        const after = s.failures.filter((f) => f.startedAt >= backAt);
        expect(after, 'calls that failed once the daemon was back').toEqual([]);
        // Before the kill nothing failed either (enable, both rotations); a call on the wire at the kill may.
        expect(s.failures.filter((f) => f.startedAt < killAt - 1000)).toEqual([]);
        expect(s.ok).toBeGreaterThan(20);
      }
      // The calls really went through the daemon: while it was dead, some failed.
      expect(stats.some((s) => s.failures.some((f) => f.startedAt >= killAt - 1000 && f.startedAt < backAt))).toBe(true);
      const live = api.liveTokens(email);
      expect(live).toHaveLength(1);
      expect(live[0]!.token).not.toBe(tok);

      // revoke-now renewed the route secrets: the configs hold new URLs, which serve a new
      // client; the old URL opens nothing new (its running sessions were kept above).
      for (const [i, f] of Object.values(FILES).entries()) {
        const m = URL_RE.exec(await h.read(f.rel))!;
        expect(m[1]).not.toBe(urls[i]);
        const fresh = await connect(m[1]!);
        expect((await fresh.client.callTool({ name: 'whoami' })).content).toEqual([{ type: 'text', text: email }]);
        await fresh.client.close();
        await expect(connect(urls[i]!)).rejects.toThrow();
      }
      const daemon = d;
      d = undefined;
      expect((await daemon.stop()).code).toBe(0);
      outputs.push(daemon.raw());
      expect(findLeaks([tok, live[0]!.token], outputs)).toEqual([]);
    } finally {
      for (const l of loops) await l.stop();
      for (const c of clients) await c.client.close().catch(() => undefined);
      await d?.stop();
      await h.cleanup();
    }
  }, 150_000);
});
