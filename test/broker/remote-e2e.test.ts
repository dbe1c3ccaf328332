/**
 * Remote entries end to end, with the real spawned daemon: realistic Cursor, VS Code,
 * Windsurf, Gemini CLI and Claude Code configs holding the token as an `Authorization: Bearer`
 * header for the stand-in remote server (a host named in `mcpHosts`); `broker enable` from the
 * CLI; real SDK clients started from each converted entry exactly as the client would (the
 * URL from the file; for Claude Code the `headersHelper` run through a shell at connect and
 * again after a 401/403, then one retry); calls without pause through a `rotate` and a
 * `revoke-now` routed through the daemon; `broker disable`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { startFakeRemote, type FakeRemote, type SeenRequest } from '../fake/remote-server.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { fingerprint } from '../../src/fingerprint.js';

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

const bearer = (t: string) => `Bearer ${t}`;

/** Each client's config as users write it, with the token in a header for the remote server. */
function configs(url: string, sseUrl: string): Array<{ client: string; rel: string; server: string; text: (t: string) => string; entry: (doc: unknown) => Record<string, unknown> }> {
  const get = (doc: unknown, ...keys: string[]) => keys.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], doc) as Record<string, unknown>;
  return [
    {
      client: 'cursor',
      rel: '.cursor/mcp.json',
      server: 'certorix',
      // A second entry on the legacy HTTP+SSE transport, which Cursor falls back to.
      text: (t) => JSON.stringify({ mcpServers: { certorix: { url, headers: { Authorization: bearer(t) } }, 'certorix-sse': { url: sseUrl, headers: { Authorization: bearer(t) } } } }, null, 2) + '\n',
      entry: (d) => get(d, 'mcpServers', 'certorix'),
    },
    {
      client: 'vscode',
      rel: '.config/Code/User/mcp.json',
      server: 'certorix',
      // JSON with comments and trailing commas, as VS Code writes and accepts it.
      text: (t) => `// VS Code MCP servers\n{\n  "servers": {\n    "certorix": {\n      "type": "http",\n      "url": "${url}",\n      "headers": { "Authorization": "${bearer(t)}" },\n    },\n  },\n}\n`,
      entry: (d) => get(d, 'servers', 'certorix'),
    },
    {
      client: 'windsurf',
      rel: '.codeium/windsurf/mcp_config.json',
      server: 'certorix',
      text: (t) => `{\n  "mcpServers": {\n    "certorix": {\n      "serverUrl": "${url}",\n      "headers": { "Authorization": "${bearer(t)}" }\n    }\n  }\n}`,
      entry: (d) => get(d, 'mcpServers', 'certorix'),
    },
    {
      client: 'gemini',
      rel: '.gemini/settings.json',
      server: 'Certorix Remote',
      text: (t) => `{\n  "theme": "Default",\n  "mcpServers": {\n    "Certorix Remote": { "httpUrl": "${url}", "headers": { "Authorization": "${bearer(t)}" }, "timeout": 30000 }\n  }\n}\n`,
      entry: (d) => get(d, 'mcpServers', 'Certorix Remote'),
    },
    {
      client: 'claude-code',
      rel: '.claude.json',
      server: 'certorix',
      text: (t) =>
        JSON.stringify({ numStartups: 7, mcpServers: { certorix: { type: 'http', url, headers: { Authorization: bearer(t), 'X-Team': 'blue' } } }, projects: {} }, null, 2) + '\n',
      entry: (d) => get(d, 'mcpServers', 'certorix'),
    },
  ];
}

/** Strips comments and trailing commas (VS Code's JSONC) for a test-side read. */
function parseJsonc(text: string): unknown {
  return JSON.parse(text.replace(/^\s*\/\/.*$/gm, '').replace(/,(\s*[}\]])/g, '$1'));
}

type Call = { name: string; arguments?: Record<string, unknown> };
type Result = { content: Array<{ text?: string }>; isError?: boolean };

/** A client as the loop sees it: one call, and the upstream sessions it has used. */
interface RemoteClient {
  name: string;
  call(c: Call): Promise<Result>;
  sessions(): string[];
  /** Server log messages received (on the standalone GET stream). */
  notes: string[];
  close(): Promise<void>;
}

async function connect(url: string, headers: Record<string, string>, notes: string[]): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: 'e2e-remote', version: '1.0.0' });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void notes.push(String(n.params.data)));
  await client.connect(transport);
  return { client, transport };
}

/** The legacy transport: GET the event stream, POST to the `endpoint` it announces (rewritten to the local origin). */
async function sseClient(name: string, url: string): Promise<RemoteClient> {
  const notes: string[] = [];
  const transport = new SSEClientTransport(new URL(url));
  const client = new Client({ name: 'e2e-remote-sse', version: '1.0.0' });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void notes.push(String(n.params.data)));
  await client.connect(transport);
  const ep = (transport as unknown as { _endpoint?: URL })._endpoint;
  expect(ep?.origin).toBe(new URL(url).origin);
  const sid = ep?.searchParams.get('sessionId');
  return { name, notes, call: (x) => client.callTool(x) as Promise<Result>, sessions: () => (sid ? [sid] : []), close: () => client.close() };
}

/** Cursor, VS Code, Windsurf, Gemini: the URL from the converted entry, its remaining headers. */
async function urlClient(name: string, url: string, headers: Record<string, string>): Promise<RemoteClient> {
  const notes: string[] = [];
  const c = await connect(url, headers, notes);
  const sid = c.transport.sessionId;
  return {
    name,
    notes,
    call: (x) => c.client.callTool(x) as Promise<Result>,
    sessions: () => (sid ? [sid] : []),
    close: async () => {
      await c.transport.terminateSession().catch(() => undefined);
      await c.client.close();
    },
  };
}

const runShell = (cmd: string, env: Record<string, string>): Promise<string> =>
  new Promise((resolve, reject) => exec(cmd, { env, shell: '/bin/sh', timeout: 10_000 }, (e, stdout, stderr) => (e ? reject(new Error(`headersHelper failed: ${e.message} ${stderr}`)) : resolve(stdout))));

/**
 * Claude Code with a headersHelper: runs the helper (a shell command line) at connect, and
 * after a 401 or 403 runs it again, reconnects and retries the call once.
 */
async function claudeCodeClient(url: string, helper: string, staticHeaders: Record<string, string>, env: Record<string, string>): Promise<RemoteClient & { helperRuns(): number }> {
  let runs = 0;
  const sessions: string[] = [];
  const notes: string[] = [];
  const open = async () => {
    runs++;
    const out = JSON.parse(await runShell(helper, env)) as Record<string, string>;
    const c = await connect(url, { ...staticHeaders, ...out }, notes);
    if (c.transport.sessionId) sessions.push(c.transport.sessionId);
    return c;
  };
  let c = await open();
  return {
    name: 'claude-code',
    notes,
    async call(x) {
      try {
        return (await c.client.callTool(x)) as Result;
      } catch (e) {
        const code = (e as { code?: number }).code;
        if (code !== 401 && code !== 403) throw e;
        await c.client.close().catch(() => undefined);
        c = await open();
        return (await c.client.callTool(x)) as Result;
      }
    },
    sessions: () => sessions,
    helperRuns: () => runs,
    close: async () => {
      await c.transport.terminateSession().catch(() => undefined);
      await c.client.close();
    },
  };
}

/** Calls without pause (a slow one now and then, where the endpoint must let it finish) until stopped. */
function callLoop(c: RemoteClient, email: string, slow: boolean): { stop(): Promise<{ ok: number; failures: string[]; maxMs: number }> } {
  let running = true;
  let ok = 0;
  let maxMs = 0;
  const failures: string[] = [];
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const t0 = performance.now();
      const call: Call = slow && i % 7 === 3 ? { name: 'slow-api', arguments: { ms: 150 } } : i % 2 ? { name: 'whoami' } : { name: 'echo', arguments: { text: `n${i}` } };
      try {
        const r = await c.call(call);
        const text = r.content[0]?.text ?? '';
        const want = call.name === 'whoami' ? email : call.name === 'slow-api' ? 'ok' : `n${i}`;
        if (r.isError || text !== want) failures.push(`${c.name} ${call.name}: ${text}`);
        else ok++;
      } catch (e) {
        failures.push(`${c.name} ${call.name}: ${(e as Error).message}`);
      }
      maxMs = Math.max(maxMs, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failures, maxMs };
    },
  };
}

describe('remote entries through the spawned daemon: enable -> real clients through rotate and revoke-now -> disable', () => {
  it('0 failed calls; the upstream sees only the live token after each swap; plaintext back with the current token', async () => {
    const email = 'remote-e2e@example.com';
    const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
    const h: TempHome = await makeHome(api.url);
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 5000, broker: { store: 'file' }, mcpHosts: ['127.0.0.1'] });
    const files = configs(remote.mcpUrl, remote.sseUrl);
    for (const f of files) await h.write(f.rel, f.text(tok));
    let d: SpawnedDaemon | undefined;
    const clients: RemoteClient[] = [];
    try {
      d = spawnDaemon(h.env);
      await d.waitFor((l) => l.msg === 'daemon started', 20_000);

      const en = await runCli(['broker', 'enable', '--json'], { env: h.env, timeoutMs: 30_000 });
      expect(en.code, en.stderr + en.stdout).toBe(0);
      const enDoc = JSON.parse(en.stdout) as { converted: unknown[]; plaintext: unknown[] };
      expect(enDoc.plaintext, en.stdout).toEqual([]);
      expect(enDoc.converted).toHaveLength(files.length + 1);
      expect(en.stderr).toContain('install-service'); // endpoint entries need the daemon kept running

      // What each client will read: no token; the local endpoint (or a headersHelper).
      let port = 0;
      const entries = new Map<string, Record<string, unknown>>();
      for (const f of files) {
        const text = await h.read(f.rel);
        expect(findLeaks([tok], [text]), f.rel).toEqual([]);
        const entry = f.entry(parseJsonc(text));
        entries.set(f.client, entry);
        if (f.client === 'claude-code') {
          expect(entry.url).toBe(remote.mcpUrl);
          expect(entry.headers).toEqual({ 'X-Team': 'blue' });
          expect(entry.headersHelper).toMatch(/ headers certorix-[0-9a-f]{8} --state-dir /);
          continue;
        }
        const key = f.client === 'windsurf' ? 'serverUrl' : f.client === 'gemini' ? 'httpUrl' : 'url';
        const m = /^http:\/\/127\.0\.0\.1:(\d+)\/[A-Za-z0-9_-]{16,}\/([a-z0-9._-]+)$/.exec(String(entry[key]));
        expect(m, `${f.client} ${String(entry[key])}`).not.toBeNull();
        expect(m![2]).toBe(f.server === 'certorix' ? 'certorix' : 'certorix-remote');
        expect(entry.headers, f.client).toBeUndefined();
        port ||= Number(m![1]);
        expect(Number(m![1])).toBe(port);
      }
      const cursorSse = parseJsonc(await h.read('.cursor/mcp.json')) as { mcpServers: Record<string, { url: string; headers?: unknown }> };
      const sseUrl = cursorSse.mcpServers['certorix-sse']!;
      expect(sseUrl.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/[A-Za-z0-9_-]{16,}/certorix-sse$`));
      expect(sseUrl.headers).toBeUndefined();
      await d.waitFor((l) => l.msg === 'broker endpoint listening' && l.port === port, 15_000);
      const st = await runCli(['broker', 'status', '--json'], { env: h.env });
      expect(st.code, st.stderr).toBe(0);
      const stDoc = JSON.parse(st.stdout) as { endpoint: { port: number; daemon: boolean; up: boolean; entries: number }; entries: Array<{ client: string; mode: string }> };
      expect(stDoc.endpoint).toMatchObject({ port, daemon: true, up: true, entries: 5 });
      expect(Object.fromEntries(stDoc.entries.map((e) => [`${e.client}`, e.mode]))).toEqual({
        cursor: 'broker-endpoint',
        vscode: 'broker-endpoint',
        windsurf: 'broker-endpoint',
        gemini: 'broker-endpoint',
        'claude-code': 'broker-headers',
      });

      // Real clients, started from the entries as each client would.
      const endpointSessions = new Set<string>();
      for (const f of files) {
        const e = entries.get(f.client)!;
        if (f.client === 'claude-code') continue;
        const c = await urlClient(f.client, String(e.url ?? e.serverUrl ?? e.httpUrl), {});
        c.sessions().forEach((s) => endpointSessions.add(s));
        clients.push(c);
      }
      {
        const c = await sseClient('cursor-sse', sseUrl.url);
        c.sessions().forEach((s) => endpointSessions.add(s));
        clients.push(c);
      }
      const cc = entries.get('claude-code')!;
      const claude = await claudeCodeClient(String(cc.url), String(cc.headersHelper), cc.headers as Record<string, string>, h.env);
      clients.push(claude);
      expect(endpointSessions.size).toBe(5);

      const loops = clients.map((c) => callLoop(c, email, c.name !== 'claude-code'));
      await new Promise((r) => setTimeout(r, 500));
      // Each swap: [CLI start, CLI end] and the token live afterwards.
      const swaps: Array<{ start: number; end: number; live: string }> = [];
      for (const args of [['rotate', '--json'], ['revoke-now', '--yes', '--json']]) {
        const start = Date.now();
        const r = await runCli(args, { env: h.env, timeoutMs: 40_000 });
        const end = Date.now();
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
        const live = api.liveTokens(email);
        expect(live).toHaveLength(1);
        swaps.push({ start, end, live: live[0]!.token });
        await new Promise((r) => setTimeout(r, 1500));
      }
      const stopAt = Date.now();
      const stats = await Promise.all(loops.map((l) => l.stop()));
      for (const [i, s] of stats.entries()) {
        expect(s.failures, clients[i]!.name).toEqual([]);
        expect(s.ok, clients[i]!.name).toBeGreaterThan(10);
      }
      expect(new Set(swaps.map((s) => s.live)).size).toBe(2);
      expect(swaps[0]!.live).not.toBe(tok);
      // Both swaps ran in the daemon (the CLI routed them through its socket).
      expect(d.lines().filter((l) => l.msg === 'rotation finished')).toHaveLength(2);
      // The standalone GET streams opened before the swaps still deliver server messages.
      await remote.notifyAll('after the swaps');
      const t0 = Date.now();
      while (clients.some((c) => !c.notes.includes('after the swaps')) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
      for (const c of clients) expect(c.notes, c.name).toContain('after the swaps');

      // What the upstream saw, per request, by bearer fingerprint.
      const seenBy = (sids: Set<string>) => remote.seen.filter((s) => s.session !== undefined && sids.has(s.session));
      const viaEndpoint = seenBy(endpointSessions);
      // The endpoint never let a dead token reach the upstream: not one 401.
      expect(viaEndpoint.filter((s) => s.status === 401)).toEqual([]);
      const windows = swaps.map((s, i) => ({ from: s.end, to: swaps[i + 1]?.start ?? stopAt, live: fingerprint(s.live) }));
      for (const w of windows) {
        const inW = viaEndpoint.filter((s) => s.at >= w.from && s.at < w.to);
        expect(inW.length).toBeGreaterThan(8);
        expect(inW.filter((s) => s.fingerprint !== w.live)).toEqual([]);
      }
      const allowed = new Set([tok, ...swaps.map((s) => s.live)].map(fingerprint));
      expect(viaEndpoint.filter((s: SeenRequest) => !allowed.has(s.fingerprint ?? ''))).toEqual([]);

      // Claude Code talks to the upstream directly: after a swap at most its first request
      // per session carries the dead token (a 401, which makes it re-run the helper).
      const viaHelper = seenBy(new Set(claude.sessions()));
      for (const w of windows) {
        const inW = viaHelper.filter((s) => s.at >= w.from && s.at < w.to);
        expect(inW.length).toBeGreaterThan(5);
        const stale = inW.filter((s) => s.fingerprint !== w.live);
        expect(stale.every((s) => s.status === 401)).toBe(true);
        expect(stale.length).toBeLessThanOrEqual(2);
      }
      expect(claude.helperRuns()).toBeGreaterThanOrEqual(3);

      const cursor = clients.find((c) => c.name === 'cursor')!;
      for (const c of clients.filter((x) => x !== cursor)) await c.close().catch(() => undefined);

      const dis = await runCli(['broker', 'disable', '--json'], { env: h.env, timeoutMs: 30_000 });
      expect(dis.code, dis.stderr).toBe(0);
      const fresh = swaps[swaps.length - 1]!.live;
      for (const f of files) expect(await h.read(f.rel), f.rel).toBe(f.text(fresh));
      // As docs/broker.md says: the route leaves with the entry, so a client still connected to the
      // endpoint fails (404) from a moment after disable until it reloads its config.
      let after: string | null = null;
      for (let i = 0; i < 50 && after === null; i++) {
        await cursor.call({ name: 'echo', arguments: { text: 'x' } }).then(
          () => new Promise((r) => setTimeout(r, 100)),
          (e: Error) => (after = e.message),
        );
      }
      expect(after).toMatch(/Not found/);
      await cursor.close().catch(() => undefined);
      clients.length = 0;

      const daemon = d;
      d = undefined;
      expect((await daemon.stop()).code).toBe(0);
      expect(findLeaks([tok, ...swaps.map((s) => s.live)], [daemon.raw(), en.stdout, en.stderr, dis.stdout, dis.stderr])).toEqual([]);
    } finally {
      for (const c of clients) await c.close().catch(() => undefined);
      await d?.stop();
      await h.cleanup();
    }
  }, 120_000);
});
