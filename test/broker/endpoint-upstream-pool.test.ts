/**
 * upstream.ts, the endpoint's own HTTP/1.1 keep-alive client, against real servers on
 * 127.0.0.1: node:http and node:https for well-formed answers, raw node:net servers for the
 * answers node would never send (malformed, close-delimited, unsolicited bytes, no answer).
 * Every forwarded MCP call goes through it, so what matters is that the server sees exactly
 * the request asked for, that connections are reused when (and only when) that is safe, that
 * a body arrives byte-exact however it is framed and however slowly it is read, and that every
 * failure is an UpstreamError with a code the endpoint can act on, never a hang or a crash.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { targetOf, Upstream, UpstreamError, type UpstreamResponse } from '../../src/broker/endpoint/upstream.js';

// ---------------------------------------------------------------------------------------------
// Harness

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  // Last registered first: the client before the servers it talks to.
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Tracked<S extends NetServer> {
  server: S;
  port: number;
  /** TCP connections accepted, and closed, so far. */
  connections: number;
  closes: number;
  open: Set<Socket>;
}

/** Listens on 127.0.0.1 and counts the server's TCP connections (for https: before TLS). */
async function serve<S extends NetServer>(server: S): Promise<Tracked<S>> {
  const t: Tracked<S> = { server, port: 0, connections: 0, closes: 0, open: new Set() };
  server.on('connection', (s: Socket) => {
    t.connections++;
    t.open.add(s);
    s.on('close', () => {
      t.closes++;
      t.open.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.port = (server.address() as AddressInfo).port;
  cleanups.push(async () => {
    for (const s of t.open) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return t;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A node:http server that reads each request's body before calling `handler`. */
function http(handler: Handler): Promise<Tracked<HttpServer>> {
  return serve(createHttpServer((req, res) => readAll(req).then((b) => handler(req, res, b))));
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * A raw TCP server: `onRequest` is called with each request head (bodyless requests only) as
 * it completes, with the socket to answer on and the request's number on that connection.
 */
function raw(onRequest: (socket: Socket, head: string, n: number) => void): Promise<Tracked<NetServer>> {
  return serve(
    createNetServer((socket) => {
      let pending = '';
      let n = 0;
      socket.on('error', () => undefined);
      socket.on('data', (c: Buffer) => {
        pending += c.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          const head = pending.slice(0, end);
          pending = pending.slice(end + 4);
          onRequest(socket, head, n++);
        }
      });
    }),
  );
}

function upstream(opts: ConstructorParameters<typeof Upstream>[0] = {}): Upstream {
  const up = new Upstream(opts);
  cleanups.push(() => up.close());
  return up;
}

/** Sends one request (loading node:tls first when the target needs it). */
async function send(up: Upstream, url: string, method = 'GET', headers: Record<string, string> = {}, body: Buffer | null = null) {
  const target = targetOf(new URL(url));
  await up.ready(target);
  return up.send(target, method, headers, body);
}

/** The whole body via consume(); rejects when `error` is called instead of `end`. */
function body(res: UpstreamResponse): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.consume({ data: (c) => chunks.push(c), end: () => resolve(Buffer.concat(chunks)), error: reject });
  });
}

/** One request and its whole answer. */
async function fetchAll(up: Upstream, url: string, method = 'GET', headers: Record<string, string> = {}, reqBody: Buffer | null = null): Promise<{ res: UpstreamResponse; body: Buffer }> {
  const res = await (await send(up, url, method, headers, reqBody)).response;
  return { res, body: await body(res) };
}

/** What a promise rejected with; fails the test when it resolves. */
async function rejection(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (e) {
    return e as UpstreamError;
  }
  throw new Error('expected a rejection, got an answer');
}

/** The body as text (or its length past 64 KiB), or the rejection's code: one value to compare. */
async function rejectionOrValue(p: Promise<{ body: Buffer }>): Promise<string | number> {
  try {
    const { body: b } = await p;
    return b.length > 65_536 ? b.length : b.toString();
  } catch (e) {
    return `rejected ${(e as UpstreamError).code}`;
  }
}

/** Polls `cond` until it holds; throws after `ms`. */
async function until(cond: () => boolean, ms = 2_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await sleep(5);
  }
}

/** Rejects when `p` takes longer than `ms` (a hang would otherwise only end at the test timeout). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`no outcome within ${ms} ms`)))]);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Deterministic bytes covering every value (a bug that mangles encodings shows). */
function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------------

describe('keep-alive and the request the server sees', () => {
  it('20 sequential POSTs travel over one connection, each arriving with its method, path, host, headers and body byte-exact', async () => {
    const seen: Array<{ method: string; url: string; rawHeaders: string[]; headers: IncomingMessage['headers']; body: Buffer }> = [];
    const srv = await http((req, res, b) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body: b });
      res.writeHead(201, { 'X-Echo-Length': String(b.length), 'Content-Type': 'application/octet-stream' });
      res.end(b);
    });
    const up = upstream();
    for (let i = 0; i < 20; i++) {
      const sent = Buffer.concat([Buffer.from(`{"id":${i}}`), pattern(100 + i * 37, i), Buffer.from('\r\n\r\n\x00end', 'latin1')]);
      const { res, body: got } = await fetchAll(up, `http://127.0.0.1:${srv.port}/mcp/x?i=${i}&q=a%20b`, 'POST', { 'content-type': 'application/json', authorization: `Bearer tok-${i}`, 'Mcp-Session-Id': 's-1' }, sent);
      expect(res.statusCode).toBe(201);
      expect(res.headers['x-echo-length']).toBe(String(sent.length));
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect(got.equals(sent)).toBe(true);
      const s = seen[i]!;
      expect(s.method).toBe('POST');
      expect(s.url).toBe(`/mcp/x?i=${i}&q=a%20b`);
      expect(s.headers.host).toBe(`127.0.0.1:${srv.port}`);
      expect(s.headers['content-type']).toBe('application/json');
      expect(s.headers.authorization).toBe(`Bearer tok-${i}`);
      expect(s.headers['mcp-session-id']).toBe('s-1');
      expect(s.headers['content-length']).toBe(String(sent.length));
      expect(s.headers['transfer-encoding']).toBeUndefined();
      // The name as given (not lower-cased) reaches the server.
      expect(s.rawHeaders).toContain('Mcp-Session-Id');
      expect(s.body.equals(sent)).toBe(true);
    }
    expect(seen).toHaveLength(20);
    expect(srv.connections).toBe(1);
  });

  it('GET and DELETE without a body send neither content-length nor transfer-encoding; an empty POST sends content-length: 0', async () => {
    const seen: Array<{ method: string; cl: string | undefined; te: string | undefined; body: number }> = [];
    const srv = await http((req, res, b) => {
      seen.push({ method: req.method ?? '', cl: req.headers['content-length'], te: req.headers['transfer-encoding'], body: b.length });
      res.end('ok');
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/mcp`;
    expect((await fetchAll(up, url, 'GET', { accept: 'text/event-stream' })).body.toString()).toBe('ok');
    expect((await fetchAll(up, url, 'DELETE', { 'mcp-session-id': 's-9' })).body.toString()).toBe('ok');
    expect((await fetchAll(up, url, 'POST', {}, Buffer.alloc(0))).body.toString()).toBe('ok');
    expect(seen).toEqual([
      { method: 'GET', cl: undefined, te: undefined, body: 0 },
      { method: 'DELETE', cl: undefined, te: undefined, body: 0 },
      { method: 'POST', cl: '0', te: undefined, body: 0 },
    ]);
    expect(srv.connections).toBe(1);
  });

  it('5 concurrent requests each get their own connection and their own answer; the next 5 reuse those connections', async () => {
    const srv = await http((req, res) => {
      // Answers out of order: the later requests first.
      const i = Number(new URL(req.url ?? '', 'http://x').searchParams.get('i'));
      setTimeout(() => res.end(`answer ${i}`), (5 - (i % 5)) * 10);
    });
    const up = upstream();
    const batch = (from: number) =>
      Promise.all([0, 1, 2, 3, 4].map((k) => fetchAll(up, `http://127.0.0.1:${srv.port}/?i=${from + k}`).then((r) => r.body.toString())));
    expect(await batch(0)).toEqual(['answer 0', 'answer 1', 'answer 2', 'answer 3', 'answer 4']);
    expect(srv.connections).toBe(5);
    expect(await batch(5)).toEqual(['answer 5', 'answer 6', 'answer 7', 'answer 8', 'answer 9']);
    expect(srv.connections).toBe(5);
    expect(srv.closes).toBe(0);
  });

  it('keeps at most 16 connections per upstream pooled: after 20 concurrent answers 4 are closed, and the next 20 open 4 new ones', async () => {
    const srv = await http((_req, res) => setTimeout(() => res.end('x'), 20));
    const up = upstream();
    const batch = () => Promise.all(Array.from({ length: 20 }, () => fetchAll(up, `http://127.0.0.1:${srv.port}/`)));
    await batch();
    expect(srv.connections).toBe(20);
    await until(() => srv.closes === 4);
    await batch();
    expect(srv.connections).toBe(24);
    await until(() => srv.closes >= 8);
    await sleep(30);
    expect(srv.closes).toBe(8);
  });
});

describe('pool hygiene', () => {
  it('an answer with "Connection: close" is not pooled: the next request opens a new connection', async () => {
    const srv = await http((_req, res) => {
      res.setHeader('Connection', 'close');
      res.end('bye');
    });
    const up = upstream();
    expect((await fetchAll(up, `http://127.0.0.1:${srv.port}/`)).body.toString()).toBe('bye');
    expect((await fetchAll(up, `http://127.0.0.1:${srv.port}/`)).body.toString()).toBe('bye');
    expect(srv.connections).toBe(2);
    await until(() => srv.closes === 2);
  });

  it('a "Keep-Alive: timeout=1" hint leaves no time to reuse the connection (hint less 1 s = 0): it is closed, not pooled', async () => {
    const srv = await http((_req, res) => {
      // Setting Connection stops node adding its own Keep-Alive hint.
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('Keep-Alive', 'timeout=1');
      res.end('short');
    });
    const up = upstream();
    expect((await fetchAll(up, `http://127.0.0.1:${srv.port}/`)).body.toString()).toBe('short');
    // The client closed it (the server would have kept it open).
    await until(() => srv.closes === 1);
    expect((await fetchAll(up, `http://127.0.0.1:${srv.port}/`)).body.toString()).toBe('short');
    expect(srv.connections).toBe(2);
  });

  it('a "Keep-Alive: timeout=2" hint: the connection is reused at once, but not once it has been idle for 1 s (hint less 1 s)', async () => {
    const srv = await http((_req, res) => {
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('Keep-Alive', 'timeout=2');
      res.end('ok');
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    await fetchAll(up, url);
    await fetchAll(up, url);
    expect(srv.connections).toBe(1);
    await sleep(1_100);
    expect((await fetchAll(up, url)).body.toString()).toBe('ok');
    expect(srv.connections).toBe(2);
    await until(() => srv.closes === 1);
  });

  it('a pooled connection the server closes while idle (after 200 ms) leaves the pool: 400 ms later the next request succeeds on a new connection', async () => {
    // A raw server: node:http on node 20 closes an idle socket only 1 s past keepAliveTimeout, and
    // hints "Keep-Alive: timeout=0" for a 200 ms one (the client would then not pool it at all).
    const srv = await raw((socket, _head, n) => {
      clearTimeout((socket as Socket & { idle?: NodeJS.Timeout }).idle);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nalive${n}`);
      (socket as Socket & { idle?: NodeJS.Timeout }).idle = setTimeout(() => socket.end(), 200);
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    expect((await fetchAll(up, url)).body.toString()).toBe('alive0');
    expect((await fetchAll(up, url)).body.toString()).toBe('alive1');
    expect(srv.connections).toBe(1); // it was pooled
    await sleep(400);
    expect(srv.closes).toBe(1); // the server closed it
    expect((await fetchAll(up, url)).body.toString()).toBe('alive0');
    expect(srv.connections).toBe(2);
  });

  it('an unsolicited byte on a pooled connection drops it: the next request uses a new connection and succeeds', async () => {
    const srv = await raw((socket, _head, n) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreq${n}`);
      if (n === 0) setTimeout(() => socket.write('X'), 50);
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    expect((await fetchAll(up, url)).body.toString()).toBe('req0');
    await until(() => srv.closes === 1); // the client closed it on the stray byte
    // Had the stray byte stayed, this answer would read "X..." or fail to parse.
    expect((await fetchAll(up, url)).body.toString()).toBe('req0');
    expect(srv.connections).toBe(2);
  });

  it('bytes past the end of an answer in the same packet: the connection is not reused', async () => {
    const srv = await raw((socket, _head, n) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreq${n}HTTP/1.1 200 OK\r\n`));
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    expect((await fetchAll(up, url)).body.toString()).toBe('req0');
    expect((await fetchAll(up, url)).body.toString()).toBe('req0');
    expect(srv.connections).toBe(2);
  });

  it('idleMs bounds a request, not a pooled connection: idle 3x idleMs in the pool, it is still reused', async () => {
    const srv = await http((_req, res) => res.end('ok'));
    const up = upstream({ idleMs: 100 });
    const url = `http://127.0.0.1:${srv.port}/`;
    await fetchAll(up, url);
    await sleep(300);
    expect((await fetchAll(up, url)).body.toString()).toBe('ok');
    expect(srv.connections).toBe(1);
    expect(srv.closes).toBe(0);
  });

  it('discard() reads the answer to its end and the connection goes back to the pool; destroy() mid-body closes it', async () => {
    const srv = await http((req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'Content-Length': '10' });
        res.write('12345'); // and the rest never
      } else res.end(pattern(5000));
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}`;
    const a = await (await send(up, `${url}/`)).response;
    a.discard();
    await fetchAll(up, `${url}/`);
    expect(srv.connections).toBe(1);
    const b = await (await send(up, `${url}/slow`)).response;
    b.destroy();
    await until(() => srv.closes === 1);
    expect((await fetchAll(up, `${url}/`)).body.equals(pattern(5000))).toBe(true);
    expect(srv.connections).toBe(2);
  });
});

describe('answer bodies', () => {
  it('a content-length body arrives byte-exact and the connection is reused', async () => {
    const big = pattern(200_000, 3);
    const srv = await http((_req, res) => {
      res.setHeader('Content-Length', big.length);
      res.end(big);
    });
    const up = upstream();
    const { res, body: got } = await fetchAll(up, `http://127.0.0.1:${srv.port}/`);
    expect(res.headers['content-length']).toBe(String(big.length));
    expect(got.equals(big)).toBe(true);
    expect((await fetchAll(up, `http://127.0.0.1:${srv.port}/`)).body.equals(big)).toBe(true);
    expect(srv.connections).toBe(1);
  });

  it('a chunked body written in several pieces with pauses arrives byte-exact, piece by piece, and the connection is reused', async () => {
    const pieces = [Buffer.from('event: message\ndata: {"id":1}\n\n'), pattern(3000, 1), Buffer.from('\r\n0\r\n\r\n'), pattern(17, 2)];
    const srv = await http(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      for (const p of pieces) {
        res.write(p);
        await sleep(30);
      }
      res.end();
    });
    const up = upstream();
    const res = await (await send(up, `http://127.0.0.1:${srv.port}/`)).response;
    expect(res.headers['transfer-encoding']).toBe('chunked');
    let calls = 0;
    const got = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.consume({
        data: (c) => {
          calls++;
          chunks.push(c);
        },
        end: () => resolve(Buffer.concat(chunks)),
        error: reject,
      });
    });
    expect(got.equals(Buffer.concat(pieces))).toBe(true);
    expect(calls).toBeGreaterThanOrEqual(pieces.length); // streamed, not collected
    await fetchAll(up, `http://127.0.0.1:${srv.port}/`);
    expect(srv.connections).toBe(1);
  });

  it('a close-delimited body (no length, no chunking) arrives byte-exact, ends at the close, and its connection is not reused', async () => {
    const parts = [pattern(1000, 5), Buffer.from('\r\n\r\nHTTP/1.1 200 OK\r\n\r\n'), pattern(2000, 6)];
    const srv = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
      void (async () => {
        for (const p of parts) {
          await sleep(20);
          socket.write(p);
        }
        socket.end();
      })();
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    const { res, body: got } = await fetchAll(up, url);
    expect(res.statusCode).toBe(200);
    expect(got.equals(Buffer.concat(parts))).toBe(true);
    expect((await fetchAll(up, url)).body.equals(Buffer.concat(parts))).toBe(true);
    expect(srv.connections).toBe(2);
  });

  it('a 1 MiB body read by a consumer that pauses at every chunk: no data while paused, and it arrives byte-exact', async () => {
    const big = pattern(1024 * 1024, 9);
    const srv = await http((_req, res) => {
      res.setHeader('Content-Length', big.length);
      res.end(big);
    });
    const up = upstream();
    const res = await (await send(up, `http://127.0.0.1:${srv.port}/`)).response;
    let paused = false;
    let whilePaused = 0;
    let pauses = 0;
    const got = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.consume({
        data: (c) => {
          if (paused) whilePaused++;
          chunks.push(c);
          res.pause();
          paused = true;
          pauses++;
          setTimeout(() => {
            paused = false;
            res.resume();
          }, 1);
        },
        end: () => resolve(Buffer.concat(chunks)),
        error: reject,
      });
    });
    expect(got.length).toBe(big.length);
    expect(got.equals(big)).toBe(true);
    expect(pauses).toBeGreaterThan(1);
    expect(whilePaused).toBe(0);
  });

  // pause() on an answer's last chunk pauses the socket, and the connection is pooled when the
  // answer ends: release() must make it read again, or the next answer on it is never read.
  it('a consumer that pauses at each chunk, the last one included, and resumes later leaves a usable pooled connection', async () => {
    const srv = await http((_req, res) => {
      res.writeHead(200, { 'Content-Length': '8' });
      res.write('abcd');
      setTimeout(() => res.end('efgh'), 30); // the last chunk comes after consume()
    });
    const up = upstream({ idleMs: 500 });
    const url = `http://127.0.0.1:${srv.port}/`;
    const res = await (await send(up, url)).response;
    let got = '';
    await new Promise<void>((resolve, reject) => {
      res.consume({
        data: (c) => {
          got += c.toString();
          res.pause();
          setTimeout(() => res.resume(), 5);
        },
        end: () => resolve(),
        error: reject,
      });
    });
    await sleep(20); // the resume() after the last chunk has run
    expect(got).toBe('abcdefgh');
    // The same connection (pooled), and its answer.
    const next = await within(rejectionOrValue(fetchAll(up, url)), 1_000);
    expect(next).toBe('abcdefgh');
    expect(srv.connections).toBe(1);
  });

  // The same through toReadable(): a reader whose buffer (16 KiB) is full when the last chunk
  // arrives pauses the socket at the end of the answer.
  it('toReadable() read by a slow reader leaves a usable pooled connection', async () => {
    const big = pattern(512 * 1024, 4);
    const tail = 48 * 1024;
    const srv = await http((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(big.length) });
      res.write(big.subarray(0, big.length - tail));
      setTimeout(() => res.end(big.subarray(big.length - tail)), 50);
    });
    const up = upstream({ idleMs: 500 });
    const url = `http://127.0.0.1:${srv.port}/`;
    const res = await (await send(up, url)).response;
    const r = res.toReadable();
    await sleep(100); // the reader is late: the stream's buffer is full
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
    const next = await within(rejectionOrValue(fetchAll(up, url)), 1_000);
    expect(next).toBe(big.length);
    expect(srv.connections).toBe(1);
  });

  it('toReadable() streams the body byte-exact (the connection is pooled after it)', async () => {
    const big = pattern(300_000, 8);
    const srv = await http((_req, res) => {
      res.setHeader('Content-Length', big.length);
      res.end(big);
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    const res = await (await send(up, url)).response;
    const chunks: Buffer[] = [];
    for await (const c of res.toReadable()) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
    // Read eagerly (the buffer never fills), so the connection is pooled and flowing.
    expect((await fetchAll(up, url)).body.equals(big)).toBe(true);
    expect(srv.connections).toBe(1);
  });

  it('body bytes that arrive with the head, before consume() is called, are kept and delivered first', async () => {
    const srv = await raw((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n'));
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    const res = await (await send(up, url)).response;
    expect(res.readableLength).toBe(6);
    const chunks: string[] = [];
    let ended = false;
    res.consume({ data: (c) => chunks.push(c.toString()), end: () => (ended = true), error: () => undefined });
    // Delivered synchronously by consume().
    expect(chunks).toEqual(['first ']);
    expect(res.readableLength).toBe(0);
    for (const s of srv.open) s.write('6\r\nsecond\r\n0\r\n\r\n');
    await until(() => ended);
    expect(chunks.join('')).toBe('first second');
  });

  it('a complete answer that arrived before consume() is delivered whole and then ended by consume()', async () => {
    const srv = await raw((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world'));
    const up = upstream();
    const res = await (await send(up, `http://127.0.0.1:${srv.port}/`)).response;
    expect(res.readableLength).toBe(11);
    const events: string[] = [];
    res.consume({ data: (c) => events.push(`data:${c.toString()}`), end: () => events.push('end'), error: (e) => events.push(`error:${e.message}`) });
    expect(events).toEqual(['data:hello world', 'end']);
  });

  it('an informational 103 answer before the real one is skipped: the response is the 200 and its body', async () => {
    const srv = await raw((socket) => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Real: yes\r\n\r\nfinal'));
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}/`;
    const { res, body: got } = await fetchAll(up, url);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-real']).toBe('yes');
    expect(res.headers['link']).toBeUndefined();
    expect(got.toString()).toBe('final');
    await fetchAll(up, url);
    expect(srv.connections).toBe(1);
  });
});

describe('errors', () => {
  it('a port nobody listens on: the response rejects with ECONNREFUSED', async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const up = upstream();
    const e = await rejection((await send(up, `http://127.0.0.1:${port}/`, 'POST', {}, Buffer.from('{}'))).response);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('ECONNREFUSED');
  });

  it('connectTimeoutMs covers the TLS handshake: a server that accepts and never answers gives ETIMEDOUT, and the connection is closed', async () => {
    // A TCP connect on loopback cannot be held back deterministically; the timer runs until secureConnect.
    const srv = await serve(
      createNetServer((s) => {
        s.on('error', () => undefined);
        s.resume(); // reads (and drops) the ClientHello, so that it sees the client's close
      }),
    );
    const up = upstream({ connectTimeoutMs: 200 });
    const t0 = Date.now();
    const e = await rejection((await send(up, `https://127.0.0.1:${srv.port}/`)).response);
    const took = Date.now() - t0;
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('ETIMEDOUT');
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2_000);
    await until(() => srv.closes === 1);
  });

  it('a malformed answer ("bad header" line) rejects with an HPE_* code and its connection is closed', async () => {
    const srv = await raw((socket) => socket.write('HTTP/1.1 200 OK\r\nbad header\r\n\r\n'));
    const up = upstream();
    const e = await rejection((await send(up, `http://127.0.0.1:${srv.port}/`)).response);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('HPE_INVALID_HEADER_TOKEN');
    await until(() => srv.closes === 1);
  });

  it('a connection closed without any answer rejects with ECONNRESET', async () => {
    const srv = await raw((socket) => socket.end());
    const up = upstream();
    const e = await rejection((await send(up, `http://127.0.0.1:${srv.port}/`)).response);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('ECONNRESET');
  });

  it('an answer cut mid-body (content-length 100, 10 bytes, then closed): consume gets the 10 bytes and error, never end', async () => {
    const srv = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      setTimeout(() => socket.destroy(), 30);
    });
    const up = upstream();
    const res = await (await send(up, `http://127.0.0.1:${srv.port}/`)).response;
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    let ended = false;
    const err = await new Promise<Error>((resolve) => res.consume({ data: (c) => chunks.push(c), end: () => (ended = true), error: resolve }));
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).code).toBe('ECONNRESET');
    expect(Buffer.concat(chunks).toString()).toBe('0123456789');
    await sleep(20);
    expect(ended).toBe(false);
  });

  it('abort() before the answer: the response rejects with ECANCELED and the server sees the connection close', async () => {
    let arrived!: () => void;
    const arrival = new Promise<void>((r) => (arrived = r));
    let reqClosed = false;
    const srv = await http((req) => {
      req.socket.on('close', () => (reqClosed = true));
      arrived(); // and never answers
    });
    const up = upstream();
    const call = await send(up, `http://127.0.0.1:${srv.port}/`, 'POST', {}, Buffer.from('{"id":1}'));
    await arrival;
    call.abort();
    const e = await rejection(call.response);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('ECANCELED');
    await until(() => reqClosed && srv.closes === 1);
  });

  it('a header value holding "\\r\\n" makes send() throw ERR_INVALID_CHAR and nothing is sent', async () => {
    const seen: string[] = [];
    const srv = await http((req, res) => {
      seen.push(`${req.method} ${req.url} ${String(req.headers['x-evil'])} ${String(req.headers['x-injected'])}`);
      res.end('ok');
    });
    const up = upstream();
    const target = targetOf(new URL(`http://127.0.0.1:${srv.port}/mcp`));
    let thrown: unknown = null;
    try {
      up.send(target, 'POST', { 'x-evil': 'a\r\nx-injected: 1' }, Buffer.from('{}'));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(UpstreamError);
    expect((thrown as UpstreamError).code).toBe('ERR_INVALID_CHAR');
    expect(() => up.send(target, 'GET', { 'bad name': 'v' }, null)).toThrow(UpstreamError);
    await sleep(50);
    expect(srv.connections).toBe(0);
    // The next request is the first the server ever sees.
    expect((await fetchAll(up, `http://127.0.0.1:${srv.port}/mcp`, 'GET', { 'x-evil': 'fine' })).body.toString()).toBe('ok');
    expect(seen).toEqual(['GET /mcp fine undefined']);
    expect(srv.connections).toBe(1);
  });

  it('idleMs: a server that never answers makes the response reject with EIDLE after about idleMs', async () => {
    const srv = await http(() => undefined);
    const up = upstream({ idleMs: 200 });
    const t0 = Date.now();
    const e = await rejection((await send(up, `http://127.0.0.1:${srv.port}/`)).response);
    const took = Date.now() - t0;
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('EIDLE');
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2_000);
    await until(() => srv.closes === 1);
  });

  it('idleMs: a body that goes quiet mid-way calls consume error with EIDLE', async () => {
    const srv = await http((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: 1\n\n'); // then silence
    });
    const up = upstream({ idleMs: 200 });
    const res = await (await send(up, `http://127.0.0.1:${srv.port}/`)).response;
    const chunks: string[] = [];
    const err = await new Promise<Error>((resolve) => res.consume({ data: (c) => chunks.push(c.toString()), end: () => resolve(new Error('ended')), error: resolve }));
    expect((err as UpstreamError).code).toBe('EIDLE');
    expect(chunks.join('')).toBe('data: 1\n\n');
  });
});

// ---------------------------------------------------------------------------------------------

describe('TLS', () => {
  let certs: { ipKey: Buffer; ipCert: Buffer; dnsKey: Buffer; dnsCert: Buffer } | null = null;

  beforeAll(() => {
    const dir = mkdtempSync(path.join(tmpdir(), 'upstream-tls-'));
    try {
      const make = (name: string, cn: string, san: string) =>
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.pem`)], { stdio: 'ignore' });
      make('ip', '127.0.0.1', 'IP:127.0.0.1');
      make('dns', 'localhost', 'DNS:localhost');
      certs = {
        ipKey: readFileSync(path.join(dir, 'ip.key')),
        ipCert: readFileSync(path.join(dir, 'ip.pem')),
        dnsKey: readFileSync(path.join(dir, 'dns.key')),
        dnsCert: readFileSync(path.join(dir, 'dns.pem')),
      };
    } catch {
      certs = null; // no openssl: the tests below skip
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  interface Seen {
    url: string;
    host: string | undefined;
    servername: string | false | undefined;
    protocol: string | null;
    resumed: boolean;
  }

  async function https(opts: HttpsServerOptions, answer: (res: ServerResponse) => void = (res) => res.end('{"over":"tls"}')) {
    const seen: Seen[] = [];
    const srv = await serve(
      createHttpsServer(opts, (req, res) => {
        const s = req.socket as TLSSocket;
        seen.push({ url: req.url ?? '', host: req.headers.host, servername: s.servername as string | false | undefined, protocol: s.getProtocol(), resumed: s.isSessionReused() });
        answer(res);
      }),
    );
    const tlsErrors: string[] = [];
    srv.server.on('tlsClientError', (e: NodeJS.ErrnoException) => tlsErrors.push(e.code ?? e.message));
    return Object.assign(srv, { seen, tlsErrors });
  }

  it('with the CA given, an https request works over TLS 1.3 and later ones reuse its one connection', async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.ipKey, cert: certs.ipCert });
    const up = upstream({ tls: { ca: certs.ipCert } });
    const url = `https://127.0.0.1:${srv.port}/mcp?x=1`;
    for (let i = 0; i < 5; i++) {
      const { res, body: got } = await fetchAll(up, url, 'POST', { 'content-type': 'application/json' }, Buffer.from(`{"id":${i}}`));
      expect(res.statusCode).toBe(200);
      expect(got.toString()).toBe('{"over":"tls"}');
    }
    expect(srv.connections).toBe(1);
    expect(srv.seen).toHaveLength(5);
    expect(srv.seen[0]).toMatchObject({ url: '/mcp?x=1', host: `127.0.0.1:${srv.port}`, protocol: 'TLSv1.3' });
  });

  it('without the CA, a self-signed certificate is refused with its certificate error code', async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.ipKey, cert: certs.ipCert });
    const up = upstream();
    const e = await rejection((await send(up, `https://127.0.0.1:${srv.port}/`)).response);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN']).toContain(e.code);
    expect(srv.seen).toHaveLength(0);
  });

  it('to a host name the server sees SNI "localhost" and the certificate is checked against it', async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.dnsKey, cert: certs.dnsCert });
    const up = upstream({ tls: { ca: certs.dnsCert } });
    const { body: got } = await fetchAll(up, `https://localhost:${srv.port}/`);
    expect(got.toString()).toBe('{"over":"tls"}');
    expect(srv.seen[0]).toMatchObject({ servername: 'localhost', host: `localhost:${srv.port}`, protocol: 'TLSv1.3' });
  });

  it('to an IP address no SNI is sent', async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.ipKey, cert: certs.ipCert });
    const up = upstream({ tls: { ca: certs.ipCert } });
    await fetchAll(up, `https://127.0.0.1:${srv.port}/`);
    expect(srv.seen).toHaveLength(1);
    expect(srv.seen[0]!.servername).toBeFalsy();
  });

  it("a certificate for another name (DNS:localhost reached as 127.0.0.1) is refused with ERR_TLS_CERT_ALTNAME_INVALID", async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.dnsKey, cert: certs.dnsCert });
    const up = upstream({ tls: { ca: certs.dnsCert } });
    const e = await rejection((await send(up, `https://127.0.0.1:${srv.port}/`)).response);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(srv.seen).toHaveLength(0);
  });

  it('a server limited to TLS 1.2 is refused (the client asks for TLS 1.3 only)', async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.ipKey, cert: certs.ipCert, maxVersion: 'TLSv1.2' });
    const up = upstream({ tls: { ca: certs.ipCert } });
    const e = await rejection((await send(up, `https://127.0.0.1:${srv.port}/`)).response);
    expect(e).toBeInstanceOf(UpstreamError);
    // node reports a TLS alert as EPROTO; the alert itself is in the message.
    expect(e.code).toBe('EPROTO');
    expect(e.message).toMatch(/alert protocol version/);
    await until(() => srv.tlsErrors.length === 1);
    expect(srv.tlsErrors).toEqual(['ERR_SSL_UNSUPPORTED_PROTOCOL']);
    expect(srv.seen).toHaveLength(0);
  });

  it('a new connection to the same upstream resumes the TLS session of the previous one', async (ctx) => {
    if (!certs) return ctx.skip();
    const srv = await https({ key: certs.ipKey, cert: certs.ipCert }, (res) => {
      res.setHeader('Connection', 'close');
      res.end('once');
    });
    const up = upstream({ tls: { ca: certs.ipCert } });
    const url = `https://127.0.0.1:${srv.port}/`;
    await fetchAll(up, url);
    await sleep(20); // the session ticket may follow the answer
    await fetchAll(up, url);
    expect(srv.connections).toBe(2);
    expect(srv.seen.map((s) => s.resumed)).toEqual([false, true]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('close()', () => {
  it('destroys pooled and in-use connections: an answer in flight errors, a request awaiting its head rejects', async () => {
    const srv = await http((req, res) => {
      if (req.url === '/head') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('data: partial\n\n'); // and never ends
      } else if (req.url === '/hang') {
        // never answers
      } else setTimeout(() => res.end('pooled'), 10);
    });
    const up = upstream();
    const url = `http://127.0.0.1:${srv.port}`;
    // Three pooled connections; two of them then carry the requests in flight.
    await Promise.all([0, 1, 2].map(() => fetchAll(up, `${url}/`)));
    expect(srv.connections).toBe(3);
    const head = await (await send(up, `${url}/head`)).response;
    const chunks: string[] = [];
    const headOutcome = new Promise<string>((resolve) =>
      head.consume({ data: (c) => chunks.push(c.toString()), end: () => resolve('end'), error: (e) => resolve(`error ${(e as UpstreamError).code}`) }),
    );
    const hang = await send(up, `${url}/hang`);
    await until(() => chunks.length > 0);
    await sleep(30); // /hang has reached the server
    expect(srv.connections).toBe(3);
    up.close();
    expect(await within(headOutcome, 1_000)).toBe('error ECONNRESET');
    const e = await within(rejection(hang.response), 1_000);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('ECONNRESET');
    // All three, the pooled one as well.
    await until(() => srv.closes === 3);
    expect(srv.open.size).toBe(0);
  });
});
