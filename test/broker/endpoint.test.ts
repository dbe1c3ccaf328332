/**
 * The daemon's local endpoint, in-process, between real MCP SDK clients and the stand-in
 * remote Certorix MCP server (which checks the Bearer on every request against the fake
 * API's live tokens). The daemon-side rotation is simulated as the executor does it:
 * announce on brokerBus, regenerate at the fake API (the old token dies at once), write the
 * store, then `stored`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { startFakeRemote, type FakeRemote } from '../fake/remote-server.js';
import { startEndpoint, type Endpoint } from '../../src/broker/endpoint/server.js';
import { SlotTokens } from '../../src/broker/endpoint/tokens.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { brokerBus, drainInFlight } from '../../src/broker/events.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { fingerprint } from '../../src/fingerprint.js';
import type { RouteEntry } from '../../src/broker/endpoint/routes.js';

let api: FakeCertorix;
let remote: FakeRemote;
let dir: string;
let store: FileTokenStore;
let tokens: SlotTokens;
let ep: Endpoint;
const logLines: string[] = [];
const log = createLogger({ level: 'debug', sink: { write: (l: string) => void logLines.push(l) } });
const SLOT = 'certorix-0000aaaa';
const EMAIL = 'remote@example.com';
const SECRET = 'Zm9vYmFyYmF6cXV4cXV1eA';
const SSE_SECRET = 'bGVnYWN5c3NlLXNlY3JldA';
let routes: Record<string, RouteEntry>;
let generation = 0;
const seenTokens: string[] = [];

beforeAll(async () => {
  api = await startFakeCertorix();
  remote = await startFakeRemote(api);
  dir = await mkdtemp(path.join(tmpdir(), 'mtr-endpoint-'));
  store = new FileTokenStore(dir);
  const t = api.addToken({ email: EMAIL, role: 'editor' });
  seenTokens.push(t);
  await store.write(SLOT, new Secret(t));
  tokens = new SlotTokens(store);
  routes = {
    [SECRET]: { id: 1, name: 'certorix', slot: SLOT, upstreamUrl: remote.mcpUrl },
    [SSE_SECRET]: { id: 2, name: 'certorix-legacy', slot: SLOT, upstreamUrl: remote.sseUrl },
  };
  ep = await startEndpoint({ port: 0, lookup: (s) => routes[s] ?? null, tokens, log });
});

afterAll(async () => {
  await ep?.close();
  tokens?.close();
  await remote?.close();
  await api?.close();
  await rm(dir, { recursive: true, force: true });
  // Logs name routes, sessions and statuses: never a token, never a header value.
  const all = logLines.join('');
  for (const t of seenTokens) expect(all).not.toContain(t);
  expect(all).not.toContain('client-supplied');
});

const liveToken = (): string => api.liveTokens(EMAIL)[0]!.token;

async function connect(secret = SECRET, name = 'certorix'): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${ep.origin}/${secret}/${name}`), {
    // What a client left with an old header would send: stripped and replaced.
    requestInit: { headers: { Authorization: 'Bearer client-supplied' } },
  });
  const client = new Client({ name: 'endpoint-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** The rotation as the executor runs it (announce, regenerate, store, stored); returns the new token and when it was stored. */
async function rotate(opts: { revoke?: boolean; regenerateDelayMs?: number } = {}): Promise<{ token: string; storedAt: number; announcedAt: number }> {
  const old = (await store.read(SLOT))!.reveal();
  const gen = ++generation;
  const announcedAt = Date.now();
  brokerBus.emit('event', { type: 'announce', generation: gen, slots: [SLOT], fingerprint: fingerprint(old), revoke: opts.revoke ?? false });
  await drainInFlight([SLOT], opts.revoke ? 1_000 : 5_000);
  if (opts.regenerateDelayMs) await new Promise((r) => setTimeout(r, opts.regenerateDelayMs));
  const res = await fetch(`${api.url}/v1/token/regenerate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${old}`, 'idempotency-key': randomUUID(), 'user-agent': 'endpoint-test (MCP)' },
  });
  expect(res.status).toBe(201);
  const { token } = (await res.json()) as { token: string };
  seenTokens.push(token);
  await store.write(SLOT, new Secret(token));
  const storedAt = Date.now();
  brokerBus.emit('event', { type: 'stored', generation: gen, slots: [SLOT], fingerprint: fingerprint(old), newFingerprint: fingerprint(token) });
  return { token, storedAt, announcedAt };
}

/** A raw request, so Host, Origin and the path are exactly what the test says. */
function raw(opts: { path: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${ep.origin}${opts.path}`, { method: opts.method ?? 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...opts.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body ?? '');
  });
}
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

describe('calls through the endpoint', () => {
  it('a Streamable HTTP client calls tools; the upstream sees only the stored token, never the client\'s header', async () => {
    const before = remote.seen.length;
    const { client, transport } = await connect();
    const r = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
    expect(r.content).toEqual([{ type: 'text', text: 'hello' }]);
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: EMAIL }]);
    await transport.terminateSession();
    await client.close();
    const mine = remote.seen.slice(before);
    expect(mine.length).toBeGreaterThanOrEqual(4);
    expect(new Set(mine.map((s) => s.fingerprint))).toEqual(new Set([fingerprint(liveToken())]));
    expect(mine.every((s) => s.status !== 401)).toBe(true);
    // The DELETE that ends the session went through too, with its Mcp-Session-Id.
    expect(mine.some((s) => s.method === 'DELETE' && s.session)).toBe(true);
  });

  it('a legacy HTTP+SSE client works: the endpoint event is rewritten to the local origin', async () => {
    const transport = new SSEClientTransport(new URL(`${ep.origin}/${SSE_SECRET}/certorix-legacy`));
    const client = new Client({ name: 'legacy', version: '1.0.0' });
    await client.connect(transport);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'old transport' } })).content).toEqual([{ type: 'text', text: 'old transport' }]);
    expect(remote.sessions().some((s) => s.kind === 'sse')).toBe(true);
    await client.close();
  });
});

describe('access', () => {
  it.each([
    ['wrong secret', `/${'A'.repeat(22)}/certorix`, {}, 404],
    ['missing secret', '/certorix', {}, 404],
    ['root', '/', {}, 404],
    ['foreign Host (DNS rebinding)', `/${SECRET}/certorix`, { host: 'evil.example:80' }, 403],
    ['Host with another port', `/${SECRET}/certorix`, { host: '127.0.0.1:1' }, 403],
    ['Origin from elsewhere', `/${SECRET}/certorix`, { origin: 'https://evil.example' }, 403],
    ['OAuth discovery probe', '/.well-known/oauth-protected-resource', {}, 404],
    ['OAuth discovery probe with path', `/.well-known/oauth-authorization-server/${SECRET}/certorix`, {}, 404],
    // Another API on the upstream host: the token goes only to the entry's own URL.
    ['another path on the upstream host', `/${SECRET}/certorix/_/v1/token/regenerate`, {}, 404],
    ['a message path no open stream announced', `/${SSE_SECRET}/certorix-legacy/_/messages?sessionId=guessed`, {}, 404],
  ])('%s: %s %j -> %i, no upstream call, no detail', async (_label, p, headers, status) => {
    const before = remote.seen.length;
    const r = await raw({ path: p, headers: headers as Record<string, string>, body: INIT });
    expect(r.status).toBe(status);
    expect(r.headers['www-authenticate']).toBeUndefined();
    expect(r.body).not.toContain('certorix-');
    expect(remote.seen.length).toBe(before);
  });

  it("only the endpoint's own Origin is served: a page on another loopback port is another origin", async () => {
    const before = remote.seen.length;
    const other = await raw({ path: `/${SECRET}/certorix`, headers: { origin: 'http://localhost:5173' }, body: INIT });
    expect(other.status).toBe(403);
    expect(remote.seen.length).toBe(before);
    const own = await raw({ path: `/${SECRET}/certorix`, headers: { origin: ep.origin }, body: INIT });
    expect(own.status).toBe(200);
  });
});

describe('upstream 401 never reaches the client', () => {
  it('a token changed behind the cache: one 401 upstream, reloaded, retried; the client sees success', async () => {
    const { client } = await connect();
    // The web UI regenerated it and set-token stored it, with no bus event reaching us.
    const old = liveToken();
    api.revoke(old);
    const fresh = api.addToken({ email: EMAIL, role: 'editor' });
    seenTokens.push(fresh);
    await store.write(SLOT, new Secret(fresh));
    const before = remote.seen.length;
    expect((await client.callTool({ name: 'echo', arguments: { text: 'after' } })).content).toEqual([{ type: 'text', text: 'after' }]);
    const mine = remote.seen.slice(before);
    expect(mine.map((s) => s.status)).toContain(401);
    expect(mine.filter((s) => s.status !== 401).every((s) => s.fingerprint === fingerprint(fresh))).toBe(true);
    await client.close();
  });

  it('a token the upstream keeps refusing: 502 with a JSON-RPC error naming status and set-token, no WWW-Authenticate', async () => {
    const { client, transport } = await connect();
    const live = liveToken();
    api.revoke(live);
    try {
      const r = await raw({
        path: `/${SECRET}/certorix`,
        headers: { 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      expect(r.status).toBe(502);
      expect(r.headers['www-authenticate']).toBeUndefined();
      const j = JSON.parse(r.body) as { id: number; error: { message: string } };
      expect(j.id).toBe(9);
      expect(j.error.message).toContain('mcp-token-rotator status');
      expect(j.error.message).toContain('set-token');
      await expect(client.callTool({ name: 'echo', arguments: { text: 'x' } })).rejects.toThrow(/set-token/);
    } finally {
      // Back to a live token for the tests that follow (what set-token would do).
      const t = api.addToken({ email: EMAIL, role: 'editor' });
      seenTokens.push(t);
      await store.write(SLOT, new Secret(t));
      brokerBus.emit('event', { type: 'stored', generation: ++generation, slots: [SLOT], fingerprint: fingerprint(live), newFingerprint: fingerprint(t) });
    }
    await client.close().catch(() => undefined);
  });

  it('an upstream redirect is not followed with the token, nor passed on', async () => {
    remote.redirectNext(1, 'https://evil.example/steal');
    const r = await raw({ path: `/${SECRET}/certorix`, body: INIT });
    expect(r.status).toBe(502);
    expect(r.headers.location).toBeUndefined();
    expect(r.body).toContain('redirect');
  });
});

describe('rotation', () => {
  it('continuous calls from several clients through rotate and revoke-now: 0 failures; after the swap the upstream sees only the live token', async () => {
    const clients = await Promise.all([connect(), connect(), connect()]);
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const loops = clients.map(async ({ client }, i) => {
      let n = 0;
      while (running) {
        try {
          const r = await client.callTool({ name: 'echo', arguments: { text: `c${i}-${n}` } });
          expect(r.content).toEqual([{ type: 'text', text: `c${i}-${n}` }]);
          ok++;
        } catch (e) {
          failures.push(String(e));
        }
        n++;
      }
    });
    // An in-flight streaming call that spans the first rotation finishes with the old token.
    const inflight = clients[0]!.client.callTool({ name: 'trickle', arguments: { steps: 6, intervalMs: 150 } }, undefined, { onprogress: () => undefined });
    const holds: number[] = [];
    let last = { token: '', storedAt: 0, announcedAt: 0 };
    for (const revoke of [false, false, true]) {
      await new Promise((r) => setTimeout(r, 300));
      last = await rotate({ revoke, regenerateDelayMs: 50 });
      holds.push(last.storedAt - last.announcedAt);
    }
    await new Promise((r) => setTimeout(r, 400));
    running = false;
    await Promise.all(loops);
    expect((await inflight).content).toEqual([{ type: 'text', text: 'done 6' }]);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    // Sessions survived: no client re-initialized (the account, not the token, owns them).
    const after = remote.seen.filter((s) => s.at > last.storedAt);
    expect(after.length).toBeGreaterThan(0);
    const accepted = after.filter((s) => s.status !== 401);
    expect(new Set(accepted.map((s) => s.fingerprint))).toEqual(new Set([fingerprint(last.token)]));
    // A request already on its way may still meet the dead token once (then retried): never after a moment.
    expect(after.filter((s) => s.at > last.storedAt + 500).every((s) => s.fingerprint === fingerprint(last.token))).toBe(true);
    for (const { client } of clients) await client.close();
    // The hold is the rotation's own regenerate-to-store time (here >= the 50 ms delay), not more.
    expect(holds.every((h) => h < 5_000)).toBe(true);
  }, 30_000);

  it('a request sent during the hold waits for the new token instead of meeting the old one', async () => {
    const { client, transport } = await connect();
    // The client opens its GET stream just after connect() resolves: let it reach the remote
    // first, so the one request counted below is the held call (a GET sent during the hold is
    // held as well, and would be counted with it).
    for (let t0 = Date.now(); !remote.seen.some((s) => s.method === 'GET' && s.session === transport.sessionId) && Date.now() - t0 < 5000; ) await new Promise((r) => setTimeout(r, 5));
    const old = (await store.read(SLOT))!.reveal();
    const gen = ++generation;
    brokerBus.emit('event', { type: 'announce', generation: gen, slots: [SLOT], fingerprint: fingerprint(old), revoke: false });
    const before = remote.seen.length;
    const call = client.callTool({ name: 'echo', arguments: { text: 'held' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(remote.seen.length).toBe(before); // held: nothing reached the upstream
    const res = await fetch(`${api.url}/v1/token/regenerate`, { method: 'POST', headers: { authorization: `Bearer ${old}`, 'idempotency-key': randomUUID(), 'user-agent': 't (MCP)' } });
    const { token } = (await res.json()) as { token: string };
    seenTokens.push(token);
    await store.write(SLOT, new Secret(token));
    brokerBus.emit('event', { type: 'stored', generation: gen, slots: [SLOT], fingerprint: fingerprint(old), newFingerprint: fingerprint(token) });
    expect((await call).content).toEqual([{ type: 'text', text: 'held' }]);
    const mine = remote.seen.slice(before);
    expect(mine.map((s) => [s.fingerprint, s.status])).toEqual([[fingerprint(token), 200]]);
    await client.close();
  });
});

describe('in-flight requests finish with the old token before regenerate', () => {
  it('the rotation waits (bounded) for a call on the wire; new calls wait for the new token', async () => {
    const { client } = await connect();
    const slow = client.callTool({ name: 'slow-api', arguments: { ms: 800 } });
    await new Promise((r) => setTimeout(r, 150)); // it is on the wire now
    expect(tokens.inFlight(SLOT)).toBe(1);
    const t0 = Date.now();
    const rotation = rotate();
    const r = await slow;
    expect(r.isError).toBeFalsy();
    expect(r.content).toEqual([{ type: 'text', text: 'ok' }]);
    const { storedAt } = await rotation;
    expect(storedAt - t0).toBeGreaterThanOrEqual(500); // regenerate waited for the call
    expect(tokens.inFlight(SLOT)).toBe(0);
    expect((await client.callTool({ name: 'slow-api', arguments: { ms: 10 } })).content).toEqual([{ type: 'text', text: 'ok' }]);
    await client.close();
  });

  it('legacy HTTP+SSE: a call answered 202 still counts until its response comes on the stream', async () => {
    // Its POST ends at once; counting only the POST let regenerate kill the token mid-call.
    const transport = new SSEClientTransport(new URL(`${ep.origin}/${SSE_SECRET}/certorix-legacy`));
    const client = new Client({ name: 'legacy-slow', version: '1.0.0' });
    await client.connect(transport);
    const slow = client.callTool({ name: 'slow-api', arguments: { ms: 800 } });
    await new Promise((r) => setTimeout(r, 150));
    expect(tokens.inFlight(SLOT)).toBe(1);
    const t0 = Date.now();
    const rotation = rotate();
    const r = await slow;
    expect(r.content).toEqual([{ type: 'text', text: 'ok' }]);
    const { storedAt } = await rotation;
    expect(storedAt - t0).toBeGreaterThanOrEqual(500);
    expect(tokens.inFlight(SLOT)).toBe(0);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'after' } })).content).toEqual([{ type: 'text', text: 'after' }]);
    expect(tokens.inFlight(SLOT)).toBe(0);
    // A call still running when its stream closes is not counted any more.
    const orphan = client.callTool({ name: 'slow-api', arguments: { ms: 2_000 } }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 150));
    expect(tokens.inFlight(SLOT)).toBe(1);
    await client.close();
    await orphan;
    for (let i = 0; i < 40 && tokens.inFlight(SLOT) > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(tokens.inFlight(SLOT)).toBe(0);
  });

  it('the wait is bounded (revoke-now: a leak does not wait for a long call)', async () => {
    const { client } = await connect();
    const slow = client.callTool({ name: 'slow-api', arguments: { ms: 3_000 } });
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    await rotate({ revoke: true });
    const took = Date.now() - t0;
    expect(took).toBeLessThan(2_500);
    // That call then meets its dead token inside the server: the price of not waiting.
    expect((await slow).isError).toBe(true);
    await client.close();
  });
});

describe('streaming', () => {
  it('an SSE response that trickles over 10 s arrives as it comes', async () => {
    const { client } = await connect();
    const t0 = Date.now();
    const at: number[] = [];
    const r = await client.callTool({ name: 'trickle', arguments: { steps: 10, intervalMs: 1000 } }, undefined, {
      onprogress: () => void at.push(Date.now() - t0),
      resetTimeoutOnProgress: true,
    });
    expect(r.content).toEqual([{ type: 'text', text: 'done 10' }]);
    expect(at).toHaveLength(10);
    // Not buffered: the first progress came after about 1 s, not at the end.
    expect(at[0]!).toBeLessThan(4_000);
    expect(at[9]! - at[0]!).toBeGreaterThan(7_000);
    await client.close();
  }, 30_000);

  it('a quiet GET stream is cut by an idle limit when one is set, and lives on without one (the default)', async () => {
    // Control: the same endpoint with a 1 s idle limit (undici's default, which the endpoint used to carry, is 300 s) cuts the stream.
    const limited = await startEndpoint({ port: 0, lookup: (s) => routes[s] ?? null, tokens, log, streamIdleTimeoutMs: 1_000 });
    try {
      const cut = await openGetStream(limited.origin, 3_000);
      expect(cut.endedAfterMs).not.toBeNull();
      expect(cut.endedAfterMs!).toBeLessThan(2_900);
    } finally {
      await limited.close();
    }
    // The real one: quiet for 3x that limit, then an event still arrives on the same stream.
    const kept = await openGetStream(ep.origin, 3_000);
    expect(kept.endedAfterMs).toBeNull();
    expect(kept.lateEvent).toBe(true);
  }, 30_000);
});

/** Initializes a session by hand, opens its GET stream, stays quiet for `quietMs`, then sends a notification. */
async function openGetStream(origin: string, quietMs: number): Promise<{ endedAfterMs: number | null; lateEvent: boolean }> {
  const base = `${origin}/${SECRET}/certorix`;
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
  const init = await fetch(base, { method: 'POST', headers: h, body: INIT });
  const sid = init.headers.get('mcp-session-id')!;
  await init.text();
  const note = await fetch(base, { method: 'POST', headers: { ...h, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await note.text();
  const ac = new AbortController();
  const get = await fetch(base, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, signal: ac.signal });
  expect(get.status).toBe(200);
  const t0 = Date.now();
  let endedAfterMs: number | null = null;
  let text = '';
  const reading = (async () => {
    try {
      for await (const chunk of get.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString('utf8');
    } catch {
      // cut
    }
    if (!ac.signal.aborted) endedAfterMs = Date.now() - t0;
  })();
  await new Promise((r) => setTimeout(r, quietMs));
  await remote.notifyAll('late event');
  await new Promise((r) => setTimeout(r, 300));
  const lateEvent = text.includes('late event');
  ac.abort();
  await reading;
  await fetch(base, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } }).then((r) => r.text()).catch(() => undefined);
  return { endedAfterMs, lateEvent };
}

describe('connections: caps and timeouts (what holds on every system)', () => {
  it('past the cap a new connection is closed at once; one that sends no request is closed after the header timeout; a served one stays', async () => {
    const capped = await startEndpoint({ port: 0, lookup: (x) => routes[x] ?? null, tokens, log, peerLookup: null, limits: { total: 4, perPeer: 4, pending: 4 }, headerTimeoutMs: 400 });
    const open = (): Promise<{ s: Socket; closed: Promise<number> }> =>
      new Promise((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', port: capped.port });
        const t0 = Date.now();
        const closed = new Promise<number>((r) => s.on('close', () => r(Date.now() - t0)));
        s.on('error', () => undefined);
        s.once('connect', () => resolve({ s, closed }));
        s.once('error', reject);
      });
    try {
      const idle = await Promise.all([open(), open(), open(), open()]);
      const extra = await open();
      // The fifth: closed at once (well before the header timeout).
      expect(await extra.closed).toBeLessThan(300);
      // The four idle ones: closed by the header timeout.
      for (const c of idle) expect(await c.closed).toBeGreaterThanOrEqual(350);
      // Then there is room again, and a real client is served.
      const transport = new StreamableHTTPClientTransport(new URL(`${capped.origin}/${SECRET}/certorix`));
      const client = new Client({ name: 'after-the-flood', version: '1.0.0' });
      await client.connect(transport);
      expect((await client.callTool({ name: 'echo', arguments: { text: 'still here' } })).content).toEqual([{ type: 'text', text: 'still here' }]);
      // A quiet connection between requests is not cut by the header timeout.
      await new Promise((r) => setTimeout(r, 600));
      expect((await client.callTool({ name: 'echo', arguments: { text: 'later' } })).content).toEqual([{ type: 'text', text: 'later' }]);
      await client.close();
    } finally {
      await capped.close();
    }
  }, 20_000);
});
