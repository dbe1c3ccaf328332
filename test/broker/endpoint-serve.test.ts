/**
 * exchange.ts's `serveHttp` on a real loopback socket: the local endpoint's HTTP/1.1 server,
 * which replaced node:http. Raw `node:net` clients send exact bytes and read exact answers
 * (node:http and fetch clients where a real client is the point). Covered: the answer's
 * framing (length, chunked, close-delimited, HEAD, 204), keep-alive and `Connection: close`,
 * pipelining, request bodies (length, chunked, 100-continue, over the limit), malformed
 * requests (400/431/501/505), the deadlines (idle before the first request, head, whole
 * request, keep-alive, answer idle), a client going away, backpressure, and close().
 * Timeouts are small so the whole file stays short.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import net, { type AddressInfo, type Socket } from 'node:net';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { serveHttp, type Exchange, type ServeOptions, type Served } from '../../src/broker/endpoint/exchange.js';

// ---------------------------------------------------------------------------------------------
// Harness

const HEADERS_MS = 300;
const REQUEST_MS = 600;
const KEEPALIVE_MS = 400;
const MAX_BODY = 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms; throws `what` (with `detail()`) after `ms`. */
async function waitFor(cond: () => boolean, what: string, ms = 2_000, detail?: () => string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await sleep(5);
  }
}

interface TestServer {
  served: Served;
  port: number;
  exchanges: Exchange[];
  connections: Socket[];
}

const servers: TestServer[] = [];

async function startServer(onExchange: (ex: Exchange) => void, over: Partial<ServeOptions> = {}): Promise<TestServer> {
  const exchanges: Exchange[] = [];
  const connections: Socket[] = [];
  const served = serveHttp({
    maxBodyBytes: MAX_BODY,
    headersTimeoutMs: HEADERS_MS,
    requestTimeoutMs: REQUEST_MS,
    keepAliveTimeoutMs: KEEPALIVE_MS,
    idleMs: 0,
    onConnection: (s) => {
      connections.push(s);
    },
    onExchange: (ex) => {
      exchanges.push(ex);
      onExchange(ex);
    },
    ...over,
  });
  await new Promise<void>((r) => served.server.listen(0, '127.0.0.1', r));
  const t: TestServer = { served, port: (served.server.address() as AddressInfo).port, exchanges, connections };
  servers.push(t);
  return t;
}

const raws: Raw[] = [];

/** A raw client: every byte received, when the server closed, and errors (never thrown). */
class Raw {
  readonly sock: Socket;
  readonly chunks: Buffer[] = [];
  readonly errors: string[] = [];
  readonly openedAt = Date.now();
  closedAt: number | null = null;
  /** The server's FIN came (a close, not a reset). */
  ended = false;
  /** When the first byte of the answer came. */
  firstByteAt: number | null = null;
  /** Bytes received so far. */
  count = 0;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (b: Buffer) => {
      this.firstByteAt ??= Date.now();
      this.chunks.push(b);
      this.count += b.length;
    });
    sock.on('end', () => {
      this.ended = true;
    });
    sock.on('error', (e: NodeJS.ErrnoException) => this.errors.push(e.code ?? e.message));
    sock.on('close', () => {
      this.closedAt = Date.now();
    });
  }

  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1' });
      const raw = new Raw(sock);
      raws.push(raw);
      sock.once('connect', () => resolve(raw));
      sock.once('error', reject);
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.bytes.toString('latin1');
  }

  /** The last `n` bytes received, latin1. */
  tail(n: number): string {
    const parts: Buffer[] = [];
    let have = 0;
    for (let i = this.chunks.length - 1; i >= 0 && have < n; i--) {
      parts.unshift(this.chunks[i] as Buffer);
      have += (this.chunks[i] as Buffer).length;
    }
    const b = Buffer.concat(parts);
    return b.toString('latin1', Math.max(0, b.length - n));
  }

  get closed(): boolean {
    return this.closedAt !== null;
  }

  /** Resolves once the bytes are handed to the kernel. */
  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, () => resolve()));
  }

  /** Waits for at least `n` bytes (or `n` = a string's length) and returns all received, latin1. */
  async receive(n: number | string, ms = 2_000): Promise<string> {
    const want = typeof n === 'string' ? n.length : n;
    await waitFor(() => this.count >= want || this.closed, `${want} bytes`, ms, () => JSON.stringify(this.text.slice(0, 300)));
    await sleep(0);
    return this.text;
  }

  async waitClosed(ms = 2_000): Promise<number> {
    await waitFor(() => this.closed, 'the connection to close', ms, () => JSON.stringify(this.text.slice(0, 300)));
    return this.closedAt as number;
  }
}

/** `connection` and `keep-alive` lines of a kept connection (floor(400 ms / 1000) = 0 s, as node:http computes it). */
const KA = 'connection: keep-alive\r\nkeep-alive: timeout=0\r\n';
const CLOSE = 'connection: close\r\n';

/** The plain answer exchange.ts gives a request it cannot serve. */
function refusal(status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${text.length + 1}\r\nconnection: close\r\n\r\n${text}\n`;
}

/** Answers "<method> <url>[ <body>]" with a content length. */
function echo(ex: Exchange): void {
  const body = `${ex.method} ${ex.url}${ex.body.length > 0 ? ` ${ex.body.toString('latin1')}` : ''}`;
  ex.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body, 'latin1')) });
  ex.end(Buffer.from(body, 'latin1'));
}

/** The exact bytes of `echo`'s answer. */
function echoed(body: string, keepAlive = true): string {
  return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n${keepAlive ? KA : CLOSE}\r\n${body}`;
}

/** Strict chunked decoding of a whole answer body; throws on a framing error. */
function dechunk(b: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', i, 'latin1');
    if (eol < 0) return { body: Buffer.concat(parts), complete: false };
    const line = b.toString('latin1', i, eol);
    if (!/^[0-9a-f]+$/.test(line)) throw new Error(`bad chunk-size line ${JSON.stringify(line)} at ${i}`);
    const size = parseInt(line, 16);
    const start = eol + 2;
    if (size === 0) {
      if (b.toString('latin1', start, start + 2) !== '\r\n' || b.length !== start + 2) throw new Error('bad last chunk');
      return { body: Buffer.concat(parts), complete: true };
    }
    if (b.length < start + size + 2) return { body: Buffer.concat(parts), complete: false };
    parts.push(b.subarray(start, start + size));
    if (b.toString('latin1', start + size, start + size + 2) !== '\r\n') throw new Error(`chunk data not followed by CRLF at ${start + size}`);
    i = start + size + 2;
  }
}

/** A node:http request on a fresh connection; the whole answer. */
function httpCall(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer[]; pauseMs?: number },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; continued: boolean }> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = httpRequest({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', agent: false, headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), continued }));
      res.on('error', reject);
      if (opts.pauseMs) {
        res.pause();
        setTimeout(() => res.resume(), opts.pauseMs);
      }
    });
    req.on('error', reject);
    const sendBody = (): void => {
      for (const b of opts.body ?? []) req.write(b);
      req.end();
    };
    if (opts.headers?.['expect'] === '100-continue') {
      req.on('continue', () => {
        continued = true;
        sendBody();
      });
      req.flushHeaders();
    } else sendBody();
  });
}

/** Deterministic bytes: chunk `i` of `size` bytes. */
function pattern(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let j = 0; j < size; j += 4) b.writeUInt32BE((i * 2654435761 + j) >>> 0, j);
  return b;
}

afterEach(() => {
  for (const r of raws.splice(0)) r.sock.destroy();
});

afterAll(async () => {
  for (const s of servers.splice(0)) await s.served.close();
});

// ---------------------------------------------------------------------------------------------
// One shared server; each test sets its handler.

let main: TestServer;
let handler: (ex: Exchange) => void = echo;

beforeAll(async () => {
  main = await startServer((ex) => handler(ex));
});

beforeEach(() => {
  handler = echo;
  main.exchanges.length = 0;
});

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

describe('answers: framing and keep-alive', () => {
  it('writeHead + end(body): the exact status line, content-length and keep-alive; a second request on the same socket is served', async () => {
    const c = await Raw.open(main.port);
    await c.send(GET('/one', 'Accept: text/plain\r\n'));
    expect(await c.receive(echoed('GET /one'))).toBe(echoed('GET /one'));
    const ex = main.exchanges[0] as Exchange;
    expect({ method: ex.method, url: ex.url, headers: { ...ex.headers }, keepAlive: ex.keepAlive, body: ex.body.length, tooLarge: ex.tooLarge }).toEqual({
      method: 'GET',
      url: '/one',
      headers: { host: '127.0.0.1', accept: 'text/plain' },
      keepAlive: true,
      body: 0,
      tooLarge: false,
    });
    expect(ex.headersSent).toBe(true);
    expect(ex.finished).toBe(true);
    await c.send(`POST /two HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc`);
    const both = echoed('GET /one') + echoed('POST /two abc');
    expect(await c.receive(both)).toBe(both);
    expect(main.exchanges.length).toBe(2);
    expect(main.exchanges[1]?.socket).toBe(ex.socket);
    expect(main.connections.filter((s) => s === ex.socket).length).toBe(1);
    expect(c.closed).toBe(false);
  });

  it('a node:http client and fetch get the answer', async () => {
    const r = await httpCall(main.port, { method: 'POST', path: '/mcp?x=1', headers: { 'content-type': 'application/json' }, body: [Buffer.from('{"a":'), Buffer.from('1}')] });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String('POST /mcp?x=1 {"a":1}'.length));
    // node:http without an agent asks for "Connection: close".
    expect(r.headers['connection']).toBe('close');
    expect(r.body.toString()).toBe('POST /mcp?x=1 {"a":1}');
    const f = await fetch(`http://127.0.0.1:${main.port}/f`, { method: 'POST', body: 'hi' });
    expect(f.status).toBe(200);
    expect(await f.text()).toBe('POST /f hi');
  });

  it('Connection: close from the client -> "connection: close", and the socket closes after the answer', async () => {
    const c = await Raw.open(main.port);
    await c.send(GET('/bye', 'Connection: close\r\n'));
    await c.waitClosed();
    expect(c.text).toBe(echoed('GET /bye', false));
    expect(c.ended).toBe(true);
    expect(c.errors).toEqual([]);
    expect(main.exchanges[0]?.keepAlive).toBe(false);
  });

  it('closeAfter(): the answer says "connection: close" and the socket closes after it', async () => {
    handler = (ex) => {
      ex.closeAfter();
      echo(ex);
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/x'));
    await c.waitClosed();
    expect(c.text).toBe(echoed('GET /x', false));
  });

  it('chunked: no content-length, several writes (an empty one sends nothing), end(body): exact framing, lower-case hex sizes', async () => {
    const states: string[] = [];
    handler = (ex) => {
      ex.writeHead(200, { 'content-type': 'text/event-stream', 'x-multi': ['a', 'b'] });
      states.push(`sent ${ex.headersSent}`);
      states.push(`write ${ex.write(Buffer.from('a'))}`);
      states.push(`sent ${ex.headersSent}`);
      ex.write(Buffer.alloc(0));
      ex.write(Buffer.from('x'.repeat(26)));
      ex.end('end');
      states.push(`finished ${ex.finished}`);
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/sse'));
    const want = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-multi: a\r\nx-multi: b\r\ntransfer-encoding: chunked\r\n${KA}\r\n1\r\na\r\n1a\r\n${'x'.repeat(26)}\r\n3\r\nend\r\n0\r\n\r\n`;
    expect(await c.receive(want)).toBe(want);
    expect(states).toEqual(['sent false', 'write true', 'sent true', 'finished true']);
    // The connection is kept and serves the next request.
    handler = echo;
    await c.send(GET('/after'));
    expect(await c.receive(want + echoed('GET /after'))).toBe(want + echoed('GET /after'));
  });

  it('chunked, decoded by node:http', async () => {
    handler = (ex) => {
      ex.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 5; i++) ex.write(pattern(i, 1000));
      ex.end();
    };
    const r = await httpCall(main.port, {});
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.equals(Buffer.concat([0, 1, 2, 3, 4].map((i) => pattern(i, 1000))))).toBe(true);
  });

  it('flushHeaders() sends the head alone at once; end() without a body sends the last chunk', async () => {
    let ex!: Exchange;
    handler = (e) => {
      ex = e;
      e.writeHead(202, { 'content-type': 'text/event-stream' });
      e.flushHeaders();
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/s'));
    const headText = `HTTP/1.1 202 Accepted\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n${KA}\r\n`;
    expect(await c.receive(headText)).toBe(headText);
    await sleep(50);
    expect(c.text).toBe(headText);
    expect(ex.headersSent).toBe(true);
    ex.end();
    expect(await c.receive(`${headText}0\r\n\r\n`)).toBe(`${headText}0\r\n\r\n`);
  });

  it('HEAD: the head only (its content-length kept), although end(body) is called; the next request follows right after', async () => {
    handler = (ex) => {
      if (ex.method !== 'HEAD') return echo(ex);
      ex.writeHead(200, { 'content-type': 'application/json', 'content-length': '7' });
      ex.end('{"a":1}');
    };
    const c = await Raw.open(main.port);
    await c.send(`HEAD /h HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n${GET('/next')}`);
    const want = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n${KA}\r\n${echoed('GET /next')}`;
    expect(await c.receive(want)).toBe(want);
    await sleep(30);
    expect(c.text).toBe(want);
  });

  it('HEAD without a content length: no transfer-encoding, no chunk, writes send nothing', async () => {
    const writes: boolean[] = [];
    handler = (ex) => {
      if (ex.method !== 'HEAD') return echo(ex);
      ex.writeHead(200, { 'content-type': 'text/plain' });
      writes.push(ex.write(Buffer.from('body')));
      ex.end('more');
    };
    const c = await Raw.open(main.port);
    await c.send(`HEAD /h HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n${GET('/next')}`);
    const want = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n${KA}\r\n${echoed('GET /next')}`;
    expect(await c.receive(want)).toBe(want);
    await sleep(30);
    expect(c.text).toBe(want);
    expect(writes).toEqual([true]);
  });

  it('204 and 304 have no body (even with end(body)); the connection is kept', async () => {
    handler = (ex) => {
      if (ex.url === '/204') {
        ex.writeHead(204, { 'mcp-session-id': 's-1' });
        ex.end('ignored');
      } else if (ex.url === '/304') {
        ex.writeHead(304, { etag: '"v1"', 'content-length': '10' });
        ex.end();
      } else echo(ex);
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/204') + GET('/304') + GET('/next'));
    const want = `HTTP/1.1 204 No Content\r\nmcp-session-id: s-1\r\n${KA}\r\nHTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncontent-length: 10\r\n${KA}\r\n${echoed('GET /next')}`;
    expect(await c.receive(want)).toBe(want);
    await sleep(30);
    expect(c.text).toBe(want);
    expect(c.closed).toBe(false);
  });

  it('an HTTP/1.0 client gets a close-delimited body, and the connection closes', async () => {
    handler = (ex) => {
      ex.writeHead(200, { 'content-type': 'text/plain' });
      ex.write(Buffer.from('abc'));
      ex.end('def');
    };
    const c = await Raw.open(main.port);
    await c.send('GET /old HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
    await c.waitClosed();
    expect(c.text).toBe(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n${CLOSE}\r\nabcdef`);
    expect(c.ended).toBe(true);
    expect(c.errors).toEqual([]);
  });

  it('an HTTP/1.0 client with Connection: keep-alive and a content-length answer keeps the connection', async () => {
    const c = await Raw.open(main.port);
    await c.send('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    expect(await c.receive(echoed('GET /a'))).toBe(echoed('GET /a'));
    await c.send('GET /b HTTP/1.0\r\n\r\n');
    await c.waitClosed();
    expect(c.text).toBe(echoed('GET /a') + echoed('GET /b', false));
  });

  it('an answer shorter than its content-length is cut: the connection is destroyed', async () => {
    handler = (ex) => {
      ex.writeHead(200, { 'content-length': '10' });
      ex.end('abc');
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/short'));
    await c.waitClosed();
    expect(c.text).toBe(`HTTP/1.1 200 OK\r\ncontent-length: 10\r\n${KA}\r\nabc`);
    expect(main.exchanges[0]?.finished).toBe(false);
  });

  it('writeHead refuses a second head and a header value holding CR/LF (header injection)', async () => {
    const errors: string[] = [];
    handler = (ex) => {
      try {
        ex.writeHead(200, { 'x-bad': 'a\r\nx-injected: 1' });
      } catch (e) {
        errors.push(`${(e as Error).constructor.name}: ${(e as Error).message}`);
      }
      ex.writeHead(200, { 'content-length': '2' });
      try {
        ex.writeHead(500, {});
      } catch (e) {
        errors.push((e as Error).message);
      }
      ex.end('ok');
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/'));
    const want = `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${KA}\r\nok`;
    expect(await c.receive(want)).toBe(want);
    expect(errors).toEqual(['TypeError: the answer header "x-bad" holds an invalid character', 'the answer head was already written']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('pipelining', () => {
  it('two requests in one write: two answers in order, the second dispatched only after the first ended', async () => {
    const log: string[] = [];
    handler = (ex) => {
      log.push(`dispatch ${ex.url}`);
      if (ex.url === '/a') {
        setTimeout(() => {
          log.push('end /a');
          echo(ex);
        }, 300);
      } else {
        log.push(`end ${ex.url}`);
        echo(ex);
      }
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/a') + GET('/b'));
    await sleep(100);
    expect(log).toEqual(['dispatch /a']);
    const want = echoed('GET /a') + echoed('GET /b');
    expect(await c.receive(want)).toBe(want);
    expect(log).toEqual(['dispatch /a', 'end /a', 'dispatch /b', 'end /b']);
  });

  it('three requests (GET, length body, chunked body) in one write, answered at once: in order, bodies intact', async () => {
    const c = await Raw.open(main.port);
    await c.send(GET('/1') + 'POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello' + 'POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nwor\r\n2\r\nld\r\n0\r\n\r\n');
    const want = echoed('GET /1') + echoed('POST /2 hello') + echoed('POST /3 world');
    expect(await c.receive(want)).toBe(want);
    expect(main.exchanges.map((e) => e.url)).toEqual(['/1', '/2', '/3']);
  });

  it('a pipelined request arriving split while the first is answered comes out intact', async () => {
    let first: Exchange | null = null;
    handler = (ex) => {
      if (ex.url === '/slow') first = ex;
      else echo(ex);
    };
    const c = await Raw.open(main.port);
    const second = 'POST /second HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody';
    await c.send(GET('/slow') + second.slice(0, 7));
    await waitFor(() => first !== null, 'the first exchange');
    await c.send(second.slice(7, 30));
    await sleep(20);
    await c.send(second.slice(30));
    await sleep(20);
    expect(main.exchanges.length).toBe(1);
    echo(first as unknown as Exchange);
    const want = echoed('GET /slow') + echoed('POST /second body');
    expect(await c.receive(want)).toBe(want);
  });

  it('a malformed request after a good one: the first is answered, then 400, and the connection closes', async () => {
    const c = await Raw.open(main.port);
    await c.send(`${GET('/good')}G(T / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await c.waitClosed();
    expect(c.text).toBe(echoed('GET /good') + refusal(400, 'Bad Request'));
    expect(main.exchanges.map((e) => e.url)).toEqual(['/good']);
  });

  it('a request after one with Connection: close is not served', async () => {
    const c = await Raw.open(main.port);
    await c.send(GET('/last', 'Connection: close\r\n') + GET('/never'));
    await c.waitClosed();
    expect(c.text).toBe(echoed('GET /last', false));
    expect(main.exchanges.map((e) => e.url)).toEqual(['/last']);
    expect(c.errors).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('request bodies', () => {
  it('a content-length body in two reads arrives byte-exact in ex.body', async () => {
    const body = Buffer.from('ab\r\n\r\n\x00\xff\x80cd', 'latin1');
    const c = await Raw.open(main.port);
    await c.send(`POST /b HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body.toString('latin1', 0, 4)}`);
    await sleep(30);
    expect(main.exchanges.length).toBe(0);
    await c.send(body.subarray(4));
    expect(await c.receive(echoed(`POST /b ${body.toString('latin1')}`))).toBe(echoed(`POST /b ${body.toString('latin1')}`));
    expect(main.exchanges[0]?.body.equals(body)).toBe(true);
  });

  it('a chunked body (extensions, trailers) arrives byte-exact', async () => {
    const c = await Raw.open(main.port);
    await c.send('POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n\x00\r\n\xff\r\n');
    await sleep(20);
    await c.send('3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n');
    const want = echoed('POST /c \x00\r\n\xffabc');
    expect(await c.receive(want)).toBe(want);
    expect(main.exchanges[0]?.body.toString('latin1')).toBe('\x00\r\n\xffabc');
    expect(main.exchanges[0]?.headers['x-trailer']).toBe(undefined);
  });

  it('a chunked body from node:http (several writes) arrives byte-exact', async () => {
    handler = (ex) => {
      ex.writeHead(200, { 'content-length': String(ex.body.length) });
      ex.end(ex.body);
    };
    const parts = [pattern(1, 100), pattern(2, 700), pattern(3, 200)];
    const r = await httpCall(main.port, { method: 'POST', body: parts });
    expect(main.exchanges[0]?.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.equals(Buffer.concat(parts))).toBe(true);
    expect(main.exchanges[0]?.body.equals(Buffer.concat(parts))).toBe(true);
  });

  it('Expect: 100-continue: "HTTP/1.1 100 Continue" comes before the body is sent, then the answer', async () => {
    const c = await Raw.open(main.port);
    await c.send('POST /e HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    const cont = 'HTTP/1.1 100 Continue\r\n\r\n';
    expect(await c.receive(cont)).toBe(cont);
    await sleep(30);
    expect(c.text).toBe(cont);
    expect(main.exchanges.length).toBe(0);
    await c.send('hello');
    expect(await c.receive(cont + echoed('POST /e hello'))).toBe(cont + echoed('POST /e hello'));
  });

  it('Expect: 100-continue with node:http: the client gets "continue" and sends its body', async () => {
    const r = await httpCall(main.port, { method: 'POST', path: '/n', headers: { expect: '100-continue', 'content-length': '3' }, body: [Buffer.from('xyz')] });
    expect(r.continued).toBe(true);
    expect(r.body.toString()).toBe('POST /n xyz');
  });

  it('no 100 Continue without a body', async () => {
    const c = await Raw.open(main.port);
    await c.send(GET('/g', 'Expect: 100-continue\r\n'));
    expect(await c.receive(echoed('GET /g'))).toBe(echoed('GET /g'));
  });

  const TOO_LARGE = `HTTP/1.1 413 Payload Too Large\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n${CLOSE}\r\ntoo large`;
  const answer413 = (ex: Exchange): void => {
    ex.writeHead(413, { 'content-type': 'text/plain', 'content-length': '9' });
    ex.end('too large');
  };

  it('a content-length body over maxBodyBytes: tooLarge, answered at once; the client sending the rest reads the whole answer (no reset), then the connection closes', async () => {
    handler = answer413;
    const total = 300_000;
    const c = await Raw.open(main.port);
    const head = `POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${total}\r\n\r\n`;
    await c.send(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(4096, 0x61)]));
    // Answered before the client sent the rest.
    expect(await c.receive(TOO_LARGE)).toBe(TOO_LARGE);
    const ex = main.exchanges[0] as Exchange;
    expect(ex.tooLarge).toBe(true);
    expect(ex.body.length).toBe(0);
    expect(ex.keepAlive).toBe(false);
    expect(c.closed).toBe(false);
    for (let sent = 4096; sent < total; sent += 16_384) await c.send(Buffer.alloc(Math.min(16_384, total - sent), 0x62));
    await c.waitClosed();
    expect(c.text).toBe(TOO_LARGE);
    expect(c.ended).toBe(true);
    expect(c.errors).toEqual([]);
    // The server read the whole body before closing.
    expect(ex.socket.bytesRead).toBe(head.length + total);
    expect(main.exchanges.length).toBe(1);
  });

  it('a chunked body over maxBodyBytes: the same', async () => {
    handler = answer413;
    const c = await Raw.open(main.port);
    await c.send(`POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n${'x'.repeat(2000)}\r\n`);
    expect(await c.receive(TOO_LARGE)).toBe(TOO_LARGE);
    expect(main.exchanges[0]?.tooLarge).toBe(true);
    for (let i = 0; i < 20; i++) await c.send(`3e8\r\n${'y'.repeat(1000)}\r\n`);
    await sleep(50);
    expect(c.closed).toBe(false);
    await c.send('0\r\n\r\n');
    await c.waitClosed();
    expect(c.text).toBe(TOO_LARGE);
    expect(c.errors).toEqual([]);
  });

  it('over maxBodyBytes, answered only after the whole body is in: still answered, then closed', async () => {
    handler = (ex) => setTimeout(() => answer413(ex), 100);
    const c = await Raw.open(main.port);
    await c.send(`POST /big HTTP/1.1\r\nContent-Length: 2000\r\n\r\n${'z'.repeat(2000)}`);
    await c.waitClosed();
    expect(c.text).toBe(TOO_LARGE);
    expect(c.errors).toEqual([]);
  });

  it('a body of exactly maxBodyBytes is kept', async () => {
    handler = (ex) => {
      ex.writeHead(200, { 'content-length': String(ex.body.length) });
      ex.end(ex.body);
    };
    const c = await Raw.open(main.port);
    await c.send(`POST / HTTP/1.1\r\nContent-Length: ${MAX_BODY}\r\n\r\n${'q'.repeat(MAX_BODY)}`);
    const want = `HTTP/1.1 200 OK\r\ncontent-length: ${MAX_BODY}\r\n${KA}\r\n${'q'.repeat(MAX_BODY)}`;
    expect(await c.receive(want)).toBe(want);
    expect(main.exchanges[0]?.tooLarge).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('malformed requests: answered plainly, then closed', () => {
  const hello = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), Buffer.alloc(32, 0x41), Buffer.from([0x20]), Buffer.alloc(32, 0x5a)]);
  it.each<[string, string | Buffer, number, string]>([
    ['a bad method (G(T)', 'G(T / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, 'Bad Request'],
    ['a target with a space', 'GET /a b HTTP/1.1\r\n\r\n', 400, 'Bad Request'],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil\r\n\r\n', 400, 'Bad Request'],
    ['content-length and transfer-encoding', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'Bad Request'],
    ['two different content lengths', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400, 'Bad Request'],
    ['obs-fold', 'GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n', 400, 'Bad Request'],
    ['a space before a colon', 'GET / HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n', 400, 'Bad Request'],
    ['a control character in a value', 'GET / HTTP/1.1\r\nX-A: a\x01\r\n\r\n', 400, 'Bad Request'],
    ['a bad chunk size in the body', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'Bad Request'],
    ['a TLS ClientHello', hello, 400, 'Bad Request'],
    ['a head over 16 KiB', `GET / HTTP/1.1\r\nX-Big: ${'b'.repeat(17_000)}\r\n\r\n`, 431, 'Request Header Fields Too Large'],
    ['transfer-encoding gzip', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 501, 'Not Implemented'],
    ['transfer-encoding "chunked, chunked"', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 501, 'Not Implemented'],
    ['an HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n', 505, 'HTTP Version Not Supported'],
    ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'HTTP Version Not Supported'],
  ])('%s -> %s', async (_name, raw, status, text) => {
    const c = await Raw.open(main.port);
    await c.send(raw);
    await c.waitClosed();
    expect(c.text).toBe(refusal(status, text));
    expect(c.ended).toBe(true);
    expect(c.errors).toEqual([]);
    expect(main.exchanges.length).toBe(0);
  });

  it('a malformed request after waiting a while in the head is answered when its error shows', async () => {
    const c = await Raw.open(main.port);
    await c.send('GET / HTTP/1.1\r\n');
    await sleep(50);
    await c.send('bad header line\r\n\r\n');
    await c.waitClosed();
    expect(c.text).toBe(refusal(400, 'Bad Request'));
  });
});

// ---------------------------------------------------------------------------------------------

describe('deadlines', () => {
  it(`a connection that sends nothing is closed after headersTimeoutMs (${HEADERS_MS} ms), without a word`, async () => {
    const c = await Raw.open(main.port);
    const at = await c.waitClosed();
    const ms = at - c.openedAt;
    expect(ms).toBeGreaterThanOrEqual(HEADERS_MS - 30);
    expect(ms).toBeLessThan(HEADERS_MS + 700);
    expect(c.text).toBe('');
  });

  it('half a head trickled one byte every 50 ms (slowloris): 408 at headersTimeoutMs after the first byte, the deadline being absolute', async () => {
    const c = await Raw.open(main.port);
    const t0 = Date.now();
    await c.send('GET / HTTP/1.1\r\nX-Slow: ');
    let trickled = 0;
    while (c.firstByteAt === null && !c.closed && Date.now() - t0 < 3_000) {
      await sleep(50);
      if (c.firstByteAt !== null || c.closed) break;
      c.sock.write('s');
      trickled++;
    }
    await c.waitClosed();
    expect(c.text).toBe(refusal(408, 'Request Timeout'));
    const ms = (c.firstByteAt as number) - t0;
    expect(ms).toBeGreaterThanOrEqual(HEADERS_MS - 30);
    expect(ms).toBeLessThan(HEADERS_MS + 450);
    // It kept sending: an inactivity timer alone would never have fired.
    expect(trickled).toBeGreaterThanOrEqual(3);
    expect(main.exchanges.length).toBe(0);
  });

  it(`a body that stalls: 408 at requestTimeoutMs (${REQUEST_MS} ms) after the request's first byte`, async () => {
    const c = await Raw.open(main.port);
    const t0 = Date.now();
    await c.send('POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc');
    await c.waitClosed();
    expect(c.text).toBe(refusal(408, 'Request Timeout'));
    const ms = (c.firstByteAt as number) - t0;
    expect(ms).toBeGreaterThanOrEqual(REQUEST_MS - 30);
    expect(ms).toBeLessThan(REQUEST_MS + 500);
    expect(main.exchanges.length).toBe(0);
  });

  it('a body trickled one byte every 50 ms: 408 at requestTimeoutMs', async () => {
    const c = await Raw.open(main.port);
    const t0 = Date.now();
    await c.send('POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n');
    while (c.firstByteAt === null && !c.closed && Date.now() - t0 < 3_000) {
      await sleep(50);
      if (c.firstByteAt !== null || c.closed) break;
      c.sock.write('b');
    }
    await c.waitClosed();
    expect(c.text).toBe(refusal(408, 'Request Timeout'));
    const ms = (c.firstByteAt as number) - t0;
    expect(ms).toBeGreaterThanOrEqual(REQUEST_MS - 30);
    expect(ms).toBeLessThan(REQUEST_MS + 500);
  });

  it('a head completed slowly within headersTimeoutMs, then a body within requestTimeoutMs, is served', async () => {
    const c = await Raw.open(main.port);
    await c.send('POST /ok HTTP/1.1\r\n');
    await sleep(100);
    await c.send('Content-Length: 4\r\n\r\nab');
    await sleep(150);
    await c.send('cd');
    expect(await c.receive(echoed('POST /ok abcd'))).toBe(echoed('POST /ok abcd'));
  });

  it(`an idle keep-alive connection after an answer is closed after keepAliveTimeoutMs (${KEEPALIVE_MS} ms)`, async () => {
    const c = await Raw.open(main.port);
    await c.send(GET('/ka'));
    expect(await c.receive(echoed('GET /ka'))).toBe(echoed('GET /ka'));
    const answeredAt = Date.now();
    const at = await c.waitClosed();
    expect(at - answeredAt).toBeGreaterThanOrEqual(KEEPALIVE_MS - 40);
    expect(at - answeredAt).toBeLessThan(KEEPALIVE_MS + 700);
    expect(c.text).toBe(echoed('GET /ka'));
    expect(c.ended).toBe(true);
  });

  it('the keep-alive timeout restarts with each request', async () => {
    const c = await Raw.open(main.port);
    let want = '';
    for (let i = 0; i < 4; i++) {
      await c.send(GET(`/r${i}`));
      want += echoed(`GET /r${i}`);
      expect(await c.receive(want)).toBe(want);
      await sleep(KEEPALIVE_MS - 200);
    }
    expect(c.closed).toBe(false);
  });

  it('with idleMs set, an answer that goes quiet closes the connection (onClose fires, finished false)', async () => {
    let ex!: Exchange;
    let closes = 0;
    const s = await startServer(
      (e) => {
        ex = e;
        e.onClose(() => closes++);
        e.writeHead(200, { 'content-type': 'text/event-stream' });
        e.flushHeaders();
      },
      { idleMs: 300 },
    );
    const c = await Raw.open(s.port);
    await c.send(GET('/quiet'));
    const headText = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n${KA}\r\n`;
    expect(await c.receive(headText)).toBe(headText);
    const headAt = Date.now();
    const at = await c.waitClosed();
    expect(at - headAt).toBeGreaterThanOrEqual(300 - 40);
    expect(at - headAt).toBeLessThan(300 + 700);
    expect(c.text).toBe(headText);
    expect(closes).toBe(1);
    expect(ex.finished).toBe(false);
  });

  it('with idleMs set, an answer that keeps writing stays open past idleMs', async () => {
    let ex!: Exchange;
    const s = await startServer(
      (e) => {
        ex = e;
        e.writeHead(200, { 'content-type': 'text/event-stream' });
        e.flushHeaders();
      },
      { idleMs: 300 },
    );
    const c = await Raw.open(s.port);
    await c.send(GET('/busy'));
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      ex.write(Buffer.from(`e${i}`));
    }
    expect(c.closed).toBe(false);
    ex.end();
    const want = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n${KA}\r\n${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `2\r\ne${i}\r\n`).join('')}0\r\n\r\n`;
    expect(await c.receive(want)).toBe(want);
  });

  it('without idleMs (0), a quiet answer stays open longer than every other timeout, then completes', async () => {
    let ex!: Exchange;
    handler = (e) => {
      ex = e;
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/long'));
    await sleep(Math.max(HEADERS_MS, REQUEST_MS, KEEPALIVE_MS) + 400);
    expect(c.closed).toBe(false);
    expect(c.text).toBe('');
    ex.writeHead(200, { 'content-type': 'text/event-stream' });
    ex.flushHeaders();
    await sleep(Math.max(HEADERS_MS, REQUEST_MS, KEEPALIVE_MS) + 100);
    expect(c.closed).toBe(false);
    ex.end('done');
    const want = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n${KA}\r\n4\r\ndone\r\n0\r\n\r\n`;
    expect(await c.receive(want)).toBe(want);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a client going away', () => {
  for (const how of ['end', 'destroy'] as const) {
    it(`a client that closes (${how}) while its answer is pending: onClose fires once, finished false`, async () => {
      let ex!: Exchange;
      let closes = 0;
      handler = (e) => {
        ex = e;
        e.onClose(() => closes++);
        e.onClose(() => closes++);
      };
      const c = await Raw.open(main.port);
      await c.send(GET('/pending'));
      await waitFor(() => main.exchanges.length === 1, 'the exchange');
      if (how === 'end') c.sock.end();
      else c.sock.destroy();
      await waitFor(() => closes > 0, 'onClose');
      await sleep(50);
      // Two callbacks, each called once.
      expect(closes).toBe(2);
      expect(ex.finished).toBe(false);
      expect(ex.socket.destroyed).toBe(true);
      // Answering afterwards is harmless.
      expect(ex.write(Buffer.from('x'))).toBe(false);
      expect(() => {
        ex.writeHead(200, { 'content-length': '2' });
        ex.end('ok');
      }).not.toThrow();
      expect(ex.finished).toBe(false);
      expect(closes).toBe(2);
    });
  }

  it('after a normal end, closing the socket does not fire onClose', async () => {
    let closes = 0;
    handler = (e) => {
      e.onClose(() => closes++);
      echo(e);
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/done'));
    expect(await c.receive(echoed('GET /done'))).toBe(echoed('GET /done'));
    c.sock.destroy();
    await waitFor(() => (main.exchanges[0] as Exchange).socket.destroyed, 'the server socket to close');
    await sleep(30);
    expect(closes).toBe(0);
    expect(main.exchanges[0]?.finished).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('backpressure', () => {
  it('write() returns false when the client does not read a large answer; onDrain fires once it reads; every byte arrives', async () => {
    let ex!: Exchange;
    let drains = 0;
    let falses = 0;
    let filling = true;
    const written: Buffer[] = [];
    // Writes until write() says "full"; on each drain, again, while filling: the kernel's
    // buffers fill up (a few MiB on loopback), after which no drain comes until the client reads.
    const pump = (): void => {
      while (written.length < 512) {
        const b = pattern(written.length, 64 * 1024);
        written.push(b);
        if (!ex.write(b)) {
          falses++;
          return;
        }
      }
    };
    handler = (e) => {
      ex = e;
      e.onDrain(() => {
        drains++;
        if (filling) pump();
      });
      e.writeHead(200, { 'content-type': 'application/octet-stream' });
      pump();
    };
    const c = await Raw.open(main.port);
    c.sock.pause();
    await c.send(GET('/large'));
    await waitFor(() => main.exchanges.length === 1, 'the exchange');
    // Stalled: no drain for 200 ms.
    for (let last = -1; last !== drains; ) {
      last = drains;
      await sleep(200);
    }
    filling = false;
    // write() said "full" well before 32 MiB, and stays so while the client does not read.
    expect(falses).toBeGreaterThanOrEqual(1);
    expect(written.length).toBeLessThan(512);
    expect(ex.write(Buffer.alloc(0))).toBe(true);
    const stalledDrains = drains;
    c.sock.resume();
    await waitFor(() => drains > stalledDrains, 'onDrain');
    ex.end();
    const total = written.reduce((n, b) => n + b.length, 0);
    await waitFor(() => c.count > total && c.tail(7) === '\r\n0\r\n\r\n', 'the whole answer', 5_000);
    const all = c.bytes;
    const headEnd = all.indexOf('\r\n\r\n') + 4;
    expect(all.toString('latin1', 0, headEnd)).toBe(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n${KA}\r\n`);
    const d = dechunk(all.subarray(headEnd));
    expect(d.complete).toBe(true);
    expect(d.body.length).toBe(total);
    expect(d.body.equals(Buffer.concat(written))).toBe(true);
  });

  it('writable() in a stream pipeline delivers everything byte-exact to a slow reader', async () => {
    const parts = Array.from({ length: 64 }, (_, i) => pattern(i, 64 * 1024));
    let done: Promise<void> | null = null;
    let ex!: Exchange;
    handler = (e) => {
      ex = e;
      e.writeHead(200, { 'content-type': 'application/octet-stream' });
      done = pipeline(Readable.from(parts), e.writable());
    };
    const r = await httpCall(main.port, { pauseMs: 200 });
    await done;
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(64 * 64 * 1024);
    expect(r.body.equals(Buffer.concat(parts))).toBe(true);
    expect(ex.finished).toBe(true);
  });

  it('writable() errors the pipeline when the client goes away', async () => {
    let done: Promise<void> | null = null;
    let ex!: Exchange;
    handler = (e) => {
      ex = e;
      e.writeHead(200, { 'content-type': 'text/event-stream' });
      e.flushHeaders();
      async function* events(): AsyncGenerator<Buffer> {
        for (let i = 0; ; i++) {
          yield Buffer.from(`data: ${i}\n\n`);
          await sleep(5);
        }
      }
      done = pipeline(Readable.from(events()), e.writable());
      done.catch(() => undefined);
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/events'));
    await waitFor(() => c.text.includes('data: 3'), 'some events');
    c.sock.destroy();
    const t0 = Date.now();
    await expect(done).rejects.toThrow('the client went away');
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(ex.finished).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('close()', () => {
  it('stops listening and closes every connection (idle, mid-request, mid-answer, kept alive)', async () => {
    let closes = 0;
    const s = await startServer(
      (e) => {
        if (e.url === '/hold') {
          e.onClose(() => closes++);
          return;
        }
        echo(e);
      },
      { keepAliveTimeoutMs: 5_000, headersTimeoutMs: 5_000, requestTimeoutMs: 5_000 },
    );
    const idle = await Raw.open(s.port);
    const reading = await Raw.open(s.port);
    await reading.send('GET /half HTTP/1.1\r\n');
    const answering = await Raw.open(s.port);
    await answering.send(GET('/hold'));
    const kept = await Raw.open(s.port);
    await kept.send(GET('/k'));
    // keep-alive: timeout=floor(5000 / 1000).
    const want = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\nGET /k';
    expect(await kept.receive(want)).toBe(want);
    await waitFor(() => s.exchanges.length === 2, 'both exchanges');
    const t0 = Date.now();
    await s.served.close();
    await Promise.all([idle, reading, answering, kept].map((c) => c.waitClosed()));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(closes).toBe(1);
    expect(s.served.server.listening).toBe(false);
    await expect(Raw.open(s.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

// ---------------------------------------------------------------------------------------------
// Found by these tests and fixed: each fails with the code before the fix

describe('exchange.ts: found and fixed', () => {
  // Was: a body over maxBodyBytes is answered (413) and then drained "bounded by the request
  // deadline" (answered() arms it). If the rest of that chunked body is malformed, #refuseWith
  // clears that deadline and, the phase being Responding, only sets `closing`: nothing closes
  // the socket any more (no deadline, no socket timeout when idleMs is 0, the parser is failed
  // and ignores what comes). The connection stays open until the client closes it.
  it('a refused (413) chunked body followed by a malformed chunk: the connection is closed', async () => {
    handler = (ex) => {
      ex.writeHead(413, { 'content-length': '0' });
      ex.end();
    };
    const c = await Raw.open(main.port);
    // The head and an oversized chunk in one read: dispatched at once, no deadline armed before.
    await c.send(`POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n${'x'.repeat(2000)}\r\n`);
    const want = `HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n${CLOSE}\r\n`;
    expect(await c.receive(want)).toBe(want);
    await c.send('zz\r\n');
    await c.waitClosed(REQUEST_MS + 900);
  });

  // Was: onClose() registered after the client already went away is never called, and a
  // writable() made then never errors: write() returns false on the destroyed socket and no
  // drain comes, so a pipeline into it (or server.ts's relay, which pauses the upstream until
  // onDrain) waits forever. server.ts registers its onClose only after awaits (the peer-uid
  // gate, loading node:tls for the first https upstream), so a client leaving in that window
  // leaves the relay (and its upstream connection) hanging.
  /** An exchange whose client has gone away before the handler did anything with it. */
  async function abandonedExchange(): Promise<Exchange> {
    let ex!: Exchange;
    handler = (e) => {
      ex = e;
    };
    const c = await Raw.open(main.port);
    await c.send(GET('/gone'));
    await waitFor(() => main.exchanges.length === 1, 'the exchange');
    c.sock.destroy();
    await waitFor(() => ex.socket.destroyed, 'the server socket to close');
    return ex;
  }

  it('onClose registered after the client went away is still called', async () => {
    const ex = await abandonedExchange();
    await sleep(20);
    let closes = 0;
    ex.onClose(() => closes++);
    await sleep(100);
    expect(closes).toBe(1);
  });

  it('writable() made after the client went away errors its pipeline', async () => {
    const ex = await abandonedExchange();
    ex.writeHead(200, { 'content-type': 'text/event-stream' });
    const done = pipeline(Readable.from([Buffer.from('data: 1\n\n'), Buffer.from('data: 2\n\n')]), ex.writable());
    const outcome = await Promise.race([done.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`), sleep(500).then(() => 'still pending')]);
    expect(outcome).toBe('rejected: the client went away');
  });
});
