/**
 * The endpoint's node:http forwarding (upstream.ts, server.ts `relay`) against a plain
 * node:http upstream on loopback whose answers each test shapes: the upstream connection is
 * pooled, a streamed answer's head is not held back by a late first event, a cut answer
 * reaches the client cut, and a client that goes away takes the upstream request with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEndpoint, type Endpoint } from '../../src/broker/endpoint/server.js';
import { SlotTokens } from '../../src/broker/endpoint/tokens.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';

const SLOT = 'certorix-0000bbbb';
const SECRET = 'dXBzdHJlYW0tdGVzdC1zZWM';
let upstream: Server;
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('{}');
let connections = 0;
const upSockets = new Set<Socket>();
let dir: string;
let tokens: SlotTokens;
let ep: Endpoint;

beforeAll(async () => {
  upstream = createServer((req, res) => handler(req, res));
  upstream.on('connection', (s: Socket) => {
    connections++;
    upSockets.add(s);
    s.on('close', () => upSockets.delete(s));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  dir = await mkdtemp(path.join(tmpdir(), 'mtr-endpoint-upstream-'));
  const store = new FileTokenStore(dir);
  await store.write(SLOT, new Secret('tok-upstream-test'));
  tokens = new SlotTokens(store);
  const log = createLogger({ level: 'warn', sink: { write: () => undefined } });
  ep = await startEndpoint({ port: 0, lookup: (s) => (s === SECRET ? { id: 1, name: 'certorix', slot: SLOT, upstreamUrl: url } : null), tokens, log, peerLookup: null });
});

afterAll(async () => {
  await ep?.close();
  tokens?.close();
  for (const s of upSockets) s.destroy();
  await new Promise<void>((r) => upstream.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

/** One POST through the endpoint on a fresh client connection; resolves at the response head. */
function post(body = '{"jsonrpc":"2.0","id":1,"method":"ping"}'): Promise<{ res: IncomingMessage; headAfterMs: number; text: Promise<string> }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${ep.origin}/${SECRET}/certorix`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
      const text = new Promise<string>((ok, fail) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () => ok(s));
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('aborted')));
      });
      text.catch(() => undefined);
      resolve({ res, headAfterMs: Date.now() - t0, text });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('endpoint -> upstream over node:http', () => {
  it('calls reuse one pooled upstream connection, with the bearer and the body passed on', async () => {
    const seen: Array<{ auth: string | undefined; body: string }> = [];
    handler = (req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, body: b });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(b);
      });
    };
    const before = connections;
    for (let i = 0; i < 10; i++) {
      const r = await post(`{"jsonrpc":"2.0","id":${i},"method":"ping"}`);
      expect(r.res.statusCode).toBe(200);
      expect(await r.text).toBe(`{"jsonrpc":"2.0","id":${i},"method":"ping"}`);
    }
    expect(seen).toHaveLength(10);
    expect(seen.every((s) => s.auth === 'Bearer tok-upstream-test')).toBe(true);
    expect(connections - before).toBe(1);
  });

  it("a streamed answer's head reaches the client at once though its first event comes late", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => res.end('event: message\ndata: {"late":true}\n\n'), 1_500);
    };
    const r = await post();
    expect(r.res.statusCode).toBe(200);
    expect(r.headAfterMs).toBeLessThan(800);
    expect(await r.text).toContain('"late":true');
  });

  it('an answer the upstream cuts reaches the client cut, not complete', async () => {
    handler = (_req, res) => {
      // Chunked (no length): only the missing last chunk tells the client it is cut.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const r = await post();
    await expect(r.text).rejects.toThrow();
  });

  it('a client that goes away takes its upstream request with it', async () => {
    let upstreamClosed: (() => void) | undefined;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      res.on('close', () => upstreamClosed?.());
    };
    const r = await post();
    r.res.destroy();
    const t0 = Date.now();
    await closed;
    expect(Date.now() - t0).toBeLessThan(2_000);
  }, 5_000);
});
