/**
 * The endpoint's requests to the upstream MCP server: HTTP/1.1 (http1.ts) on pooled
 * keep-alive connections, plain TCP to a loopback server or TLS 1.3 to a remote one.
 *
 * Why not node:http's client: its per-request machinery (ClientRequest, the agent's queues
 * and events, an IncomingMessage stream, a parser object) was about a third of the daemon's
 * CPU on every forwarded call, for features the endpoint does not use. Why not undici: its
 * first request compiles a WebAssembly HTTP parser, which leaves the daemon about 12 MiB
 * bigger for good (docs/benchmarks.md, "Local endpoint").
 *
 * One request at a time per connection, no pipelining; a connection goes back to the pool
 * only after its answer ended cleanly and the answer allowed it. A pooled connection is not
 * used once it has been idle for FREE_SOCKET_MS, or for 1 s less than the server's
 * `Keep-Alive: timeout=` hint (the server would close it under us: node's agent keeps the
 * same margin); a connection the server closes while pooled leaves the pool at once.
 *
 * Deadlines: connecting is bounded (`connectTimeoutMs`); an answer is not (a tool call may
 * run long, a GET stream may be quiet for hours) unless `idleMs` is set (tests).
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { hostHeader, keepAliveHintMs, ParseError, requestHead, ResponseParser, type ResponseHead, type ResponseSink } from './http1.js';

/** How long a pooled connection stays open unused, when the server does not say less. */
const FREE_SOCKET_MS = 4_000;
/** Pooled connections kept per upstream; more are closed when their answer ends. */
const MAX_FREE_PER_UPSTREAM = 16;

export interface UpstreamTarget {
  https: boolean;
  hostname: string;
  port: number;
  /** Path and query. */
  path: string;
  origin: string;
}

export function targetOf(u: URL): UpstreamTarget {
  const https = u.protocol === 'https:';
  // URL keeps IPv6 literals bracketed; the socket wants the bare address.
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { https, hostname, port: u.port === '' ? (https ? 443 : 80) : Number(u.port), path: `${u.pathname}${u.search}`, origin: u.origin };
}

export class UpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface BodyHandlers {
  data(chunk: Buffer): void;
  end(): void;
  /** The answer was cut (the connection failed or closed early, or it was malformed). */
  error(e: Error): void;
}

/**
 * An answer's head and its body as it comes. Bytes that arrive before `consume` is called
 * (the head and the first event are mostly in one packet) are kept and handed over then.
 */
export class UpstreamResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[]>;
  readonly #call: Call;
  #kept: Buffer[] | null = [];
  #keptBytes = 0;
  #ended = false;
  #failed: Error | null = null;
  #to: BodyHandlers | null = null;

  constructor(head: ResponseHead, call: Call) {
    this.statusCode = head.status;
    this.headers = head.headers;
    this.#call = call;
  }

  /** Body bytes already here and not yet consumed. */
  get readableLength(): number {
    return this.#keptBytes;
  }

  consume(to: BodyHandlers): void {
    this.#to = to;
    const kept = this.#kept;
    this.#kept = null;
    this.#keptBytes = 0;
    if (kept) for (const c of kept) to.data(c);
    if (this.#failed) to.error(this.#failed);
    else if (this.#ended) to.end();
  }

  /** Not passed on: read to its end, so that the connection goes back to the pool. */
  discard(): void {
    this.consume({ data: () => undefined, end: () => undefined, error: () => undefined });
  }

  pause(): void {
    this.#call.conn?.socket.pause();
  }

  resume(): void {
    this.#call.conn?.socket.resume();
  }

  /** Stops the answer (the client went away): its connection is closed, not pooled. */
  destroy(): void {
    this.#call.abort();
  }

  /** The body as a Readable, with backpressure (for stream pipelines: event rewriting). */
  toReadable(): Readable {
    const r = new Readable({
      read: () => this.resume(),
      destroy: (e, cb) => {
        if (!this.#ended) this.destroy();
        cb(e);
      },
    });
    this.consume({
      data: (c) => {
        if (!r.push(c)) this.pause();
      },
      end: () => r.push(null),
      error: (e) => r.destroy(e),
    });
    return r;
  }

  /** From the parser. */
  _data(chunk: Buffer): void {
    if (this.#to) this.#to.data(chunk);
    else {
      // The parser hands out slices of the socket's buffer; they stay valid (node allocates a new one per read).
      this.#kept?.push(chunk);
      this.#keptBytes += chunk.length;
    }
  }

  _end(): void {
    this.#ended = true;
    this.#to?.end();
  }

  _fail(e: Error): void {
    if (this.#ended || this.#failed) return;
    this.#failed = e;
    this.#to?.error(e);
  }
}

export interface UpstreamCall {
  /** The answer's head; rejects with an UpstreamError (its `code` says why) when no answer came. */
  response: Promise<UpstreamResponse>;
  /** Stops the request and its answer; the connection is closed. */
  abort(): void;
}

interface Conn {
  socket: Socket;
  key: string;
  call: Call | null;
  /** When it went back to the pool; its idle limit there. */
  freeSince: number;
  freeMs: number;
}

/** A pooled connection idle past its limit: the server may be closing it; not used again. */
const idleTooLong = (c: Conn, now: number): boolean => now - c.freeSince >= c.freeMs;

class Call implements ResponseSink {
  conn: Conn | null;
  readonly #pool: Upstream;
  readonly #parser: ResponseParser;
  #resolve!: (r: UpstreamResponse) => void;
  #reject!: (e: Error) => void;
  readonly response: Promise<UpstreamResponse>;
  #res: UpstreamResponse | null = null;
  #over = false;

  constructor(conn: Conn, pool: Upstream) {
    this.conn = conn;
    this.#pool = pool;
    this.#parser = new ResponseParser(this);
    this.response = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  feed(chunk: Buffer): void {
    try {
      this.#parser.execute(chunk);
    } catch (e) {
      this.fail(e instanceof ParseError ? new UpstreamError(e.code, `the upstream's answer is malformed: ${e.message}`) : (e as Error));
    }
  }

  /** The server closed its side. */
  eof(): void {
    try {
      this.#parser.finish();
    } catch (e) {
      this.fail(e instanceof ParseError ? new UpstreamError('ECONNRESET', e.message) : (e as Error));
    }
  }

  head(head: ResponseHead): void {
    this.#res = new UpstreamResponse(head, this);
    const hint = keepAliveHintMs(head.headers);
    if (hint !== null && this.conn) this.conn.freeMs = Math.min(FREE_SOCKET_MS, Math.max(0, hint - 1_000));
    this.#resolve(this.#res);
  }

  data(chunk: Buffer): void {
    this.#res?._data(chunk);
  }

  end(reusable: boolean): void {
    if (this.#over) return;
    this.#over = true;
    const conn = this.conn;
    this.conn = null;
    if (conn) this.#pool.release(conn, reusable);
    this.#res?._end();
  }

  /** The request failed or its answer was cut: the connection is closed, never pooled. */
  fail(e: Error): void {
    if (this.#over) return;
    this.#over = true;
    const conn = this.conn;
    this.conn = null;
    if (conn) {
      conn.call = null;
      conn.socket.destroy();
    }
    if (this.#res) this.#res._fail(e);
    else this.#reject(e);
  }

  abort(): void {
    this.fail(new UpstreamError('ECANCELED', 'the request was cancelled'));
  }
}

export class Upstream {
  readonly #free = new Map<string, Conn[]>();
  /** Every open connection, pooled or carrying a request: closed with the endpoint. */
  readonly #open = new Set<Conn>();
  readonly #connectTimeoutMs: number;
  readonly #idleMs: number;
  readonly #tlsExtra: ConnectionOptions;
  #tls: typeof import('node:tls') | null = null;
  /** TLS sessions by upstream, for resumption on a new connection (as node's https agent does). */
  readonly #sessions = new Map<string, Buffer>();
  #sweep: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: { connectTimeoutMs?: number; idleMs?: number; tls?: ConnectionOptions } = {}) {
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.#idleMs = opts.idleMs ?? 0;
    this.#tlsExtra = opts.tls ?? {};
  }

  /**
   * node:tls is loaded at the first https upstream only: a daemon whose endpoint has not
   * forwarded anything yet does not carry it.
   */
  ready(target: UpstreamTarget): Promise<void> | null {
    if (!target.https || this.#tls) return null;
    return import('node:tls').then((m) => {
      this.#tls ??= m;
    });
  }

  /** Sends the request (after `ready(target)`); `body` null = none. Throws (ERR_INVALID_CHAR) on a header that would break the head. */
  send(target: UpstreamTarget, method: string, headers: Record<string, string>, body: Buffer | null): UpstreamCall {
    let head: string;
    try {
      head = requestHead(method, target.path, hostHeader(target.hostname, target.port, target.https), headers, body === null ? null : body.length);
    } catch (e) {
      throw new UpstreamError('ERR_INVALID_CHAR', (e as Error).message);
    }
    const key = `${target.https ? 's' : 'p'}:${target.hostname}:${target.port}`;
    const conn = this.#take(key) ?? this.#connect(target, key);
    const call = new Call(conn, this);
    conn.call = call;
    if (this.#idleMs > 0) conn.socket.setTimeout(this.#idleMs);
    conn.socket.write(body === null || body.length === 0 ? head : Buffer.concat([Buffer.from(head, 'latin1'), body]));
    return call;
  }

  /** A connection whose answer ended: pooled when it may carry another request, else closed. */
  release(conn: Conn, reusable: boolean): void {
    conn.call = null;
    const list = this.#free.get(conn.key);
    if (!reusable || this.#closed || conn.socket.destroyed || conn.freeMs === 0 || (list?.length ?? 0) >= MAX_FREE_PER_UPSTREAM) {
      conn.socket.destroy();
      return;
    }
    if (this.#idleMs > 0) conn.socket.setTimeout(0);
    // A consumer may have paused the answer on its last bytes: pooled, the socket must read
    // again (the next answer, or the server's close).
    if (conn.socket.isPaused()) conn.socket.resume();
    conn.freeSince = Date.now();
    if (list) list.push(conn);
    else this.#free.set(conn.key, [conn]);
    // Pooled connections past their idle limit are closed within a second; a timer only while any is pooled.
    this.#sweep ??= setInterval(() => this.#closeIdle(), 1_000).unref();
  }

  #take(key: string): Conn | null {
    const list = this.#free.get(key);
    if (!list) return null;
    const now = Date.now();
    // Most recently used first: the others age out and close.
    let found: Conn | null = null;
    for (let c = list.pop(); c; c = list.pop()) {
      if (!c.socket.destroyed && !idleTooLong(c, now)) {
        found = c;
        break;
      }
      c.socket.destroy();
    }
    if (list.length === 0) {
      this.#free.delete(key);
      this.#stopSweepIfEmpty();
    }
    return found;
  }

  #connect(target: UpstreamTarget, key: string): Conn {
    let socket: Socket;
    if (target.https) {
      const tls = this.#tls;
      if (!tls) throw new Error('Upstream.ready was not awaited for an https target');
      const s: TLSSocket = tls.connect({
        host: target.hostname,
        port: target.port,
        // SNI names a host, never an address (RFC 6066 3).
        ...(isIP(target.hostname) ? {} : { servername: target.hostname }),
        ALPNProtocols: ['http/1.1'],
        minVersion: 'TLSv1.3',
        session: this.#sessions.get(key),
        ...this.#tlsExtra,
      });
      s.on('session', (session: Buffer) => {
        if (this.#sessions.size >= 64) this.#sessions.clear();
        this.#sessions.set(key, session);
      });
      socket = s;
    } else socket = netConnect({ host: target.hostname, port: target.port });
    socket.setNoDelay(true);
    const conn: Conn = { socket, key, call: null, freeSince: 0, freeMs: FREE_SOCKET_MS };
    this.#open.add(conn);
    const timer = setTimeout(() => socket.destroy(new UpstreamError('ETIMEDOUT', 'connecting to the upstream timed out')), this.#connectTimeoutMs);
    socket.once(target.https ? 'secureConnect' : 'connect', () => clearTimeout(timer));
    socket.on('data', (chunk: Buffer) => {
      if (conn.call) conn.call.feed(chunk);
      // Bytes while pooled: no request asked for them; the connection is out of step.
      else socket.destroy();
    });
    socket.on('end', () => {
      if (conn.call) conn.call.eof();
      socket.destroy();
    });
    socket.on('timeout', () => socket.destroy(new UpstreamError('EIDLE', 'the upstream sent nothing within the idle limit')));
    socket.on('error', (e: NodeJS.ErrnoException) => conn.call?.fail(e instanceof UpstreamError ? e : new UpstreamError(e.code ?? 'network error', e.message)));
    socket.on('close', () => {
      clearTimeout(timer);
      conn.call?.fail(new UpstreamError('ECONNRESET', 'the upstream closed the connection'));
      this.#open.delete(conn);
      this.#forget(conn);
    });
    return conn;
  }

  #forget(conn: Conn): void {
    const list = this.#free.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#free.delete(conn.key);
    this.#stopSweepIfEmpty();
  }

  #closeIdle(): void {
    const now = Date.now();
    for (const list of this.#free.values()) for (const c of [...list]) if (idleTooLong(c, now)) c.socket.destroy();
    this.#stopSweepIfEmpty();
  }

  #stopSweepIfEmpty(): void {
    if (this.#free.size > 0 || !this.#sweep) return;
    clearInterval(this.#sweep);
    this.#sweep = null;
  }

  close(): void {
    this.#closed = true;
    for (const c of [...this.#open]) c.socket.destroy();
    this.#free.clear();
    this.#stopSweepIfEmpty();
  }
}
