/**
 * One HTTP exchange with a provider's API over Node's own node:http / node:https: send the
 * request, wait for the answer, read its body with a size cap, and clean up in `finally`
 * whatever happened. The provider clients (src/providers/http.ts, certorix/api.ts) classify
 * the outcome; this module only moves bytes and says why it stopped.
 *
 * Why not undici: its HTTP parser is WebAssembly (llhttp.wasm), compiled on the first request;
 * the compile peaks at ~37 MB of malloc that glibc keeps, so an idle daemon that checked one
 * token at start-up held ~20 MiB more than one that used node:http, whose llhttp is native.
 *
 * What each transport (one per client) holds:
 * - a keep-alive Agent (https: TLS 1.3 at least; the system CAs plus NODE_EXTRA_CA_CERTS, as
 *   node:https always does). Idle sockets are unref'd by the Agent, so a CLI exits when done.
 * - the calls in flight, so close() lets them finish for a grace period, then destroys them.
 *
 * Failures, as thrown by `send`:
 * - RequestTimeout (code E_CONNECT_TIMEOUT): no connection (TCP, and TLS for https) within
 *   connectTimeoutMs; nothing was sent. code E_TIMEOUT: connected, but no complete answer
 *   (headers and body) within timeoutMs of the call's start.
 * - the caller's abort: `signal.reason`.
 * - RequestInvalid (code E_REQUEST_INVALID): node refused to build the request (a bug).
 * - otherwise node's own error (ECONNREFUSED, ENOTFOUND, a TLS code, ECONNRESET, ...).
 * A call close() cuts off fails with "the client was closed before the API answered";
 * `transport.closed` lets the caller name it.
 */
import type http from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import { loadBuiltin } from '../builtin.js';

export interface TransportOptions {
  /** The whole call: connect, headers and body. */
  timeoutMs: number;
  /** Until the socket is connected (and the TLS handshake done); default timeoutMs. */
  connectTimeoutMs?: number;
  /** Answers over this many bytes are not read on (`truncated`). */
  maxBodyBytes: number;
  /** How long close() lets calls in flight finish before cutting them off. */
  closeGraceMs: number;
  /** A kept-alive socket unused this long is closed; default 4000 (undici's keepAliveTimeout). */
  idleSocketMs?: number;
}

export interface SendRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  /** Sent as is, with its Content-Length. */
  body?: string;
  signal?: AbortSignal | undefined;
}

export interface Answer {
  status: number;
  /** Lower-case names; a repeated header is an array of its values, a single one a string. */
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body was over maxBodyBytes and was not read (text is empty). */
  truncated: boolean;
}

export interface Transport {
  send(req: SendRequest): Promise<Answer>;
  /** True once close() was called: a failure of a call in flight is then the close's doing. */
  readonly closed: boolean;
  /** Waits up to closeGraceMs for calls in flight, then destroys them and every socket. */
  close(): Promise<void>;
}

export class RequestTimeout extends Error {
  readonly code: 'E_CONNECT_TIMEOUT' | 'E_TIMEOUT';
  constructor(
    /** 'connect': no connection was made, so nothing was sent. */
    readonly phase: 'connect' | 'answer',
    readonly ms: number,
  ) {
    super(phase === 'connect' ? `no connection within ${ms} ms` : `no complete answer within ${ms} ms`);
    this.name = 'RequestTimeout';
    this.code = phase === 'connect' ? 'E_CONNECT_TIMEOUT' : 'E_TIMEOUT';
  }
}

export class RequestInvalid extends Error {
  readonly code = 'E_REQUEST_INVALID';
  constructor(cause: unknown) {
    super(`the request could not be built (${(cause as { code?: unknown } | null)?.code ?? 'error'})`, { cause });
    this.name = 'RequestInvalid';
  }
}

const IDLE_SOCKET_MS = 4_000;

export function createTransport(opts: TransportOptions): Transport {
  const { timeoutMs, maxBodyBytes, closeGraceMs } = opts;
  const connectTimeoutMs = opts.connectTimeoutMs ?? timeoutMs;
  const idleSocketMs = opts.idleSocketMs ?? IDLE_SOCKET_MS;
  // One Agent per scheme, made on first use; `timeout` only closes idle sockets (an in-use
  // socket's timeout is an event nobody listens to: the call's own timers bound it).
  let httpAgent: http.Agent | undefined;
  let httpsAgent: https.Agent | undefined;
  // node:http, and node:https with TLS, are loaded at the first request of their scheme: a
  // daemon that has not called an API yet (or only a plain-http one) does not carry them.
  let httpMod: typeof http | undefined;
  let httpsMod: typeof https | undefined;
  const moduleFor = (tls: boolean): typeof http | typeof https => (tls ? (httpsMod ??= loadBuiltin<typeof https>('node:https')) : (httpMod ??= loadBuiltin<typeof http>('node:http')));
  const agentFor = (url: URL): http.Agent =>
    url.protocol === 'https:'
      ? (httpsAgent ??= new (moduleFor(true) as typeof https).Agent({ keepAlive: true, timeout: idleSocketMs, minVersion: 'TLSv1.3' }))
      : (httpAgent ??= new (moduleFor(false) as typeof http).Agent({ keepAlive: true, timeout: idleSocketMs }));
  let closed = false;
  /** Each call in flight: settles when it is over, and cuts it off when asked. */
  const inFlight = new Map<Promise<void>, (why: Error) => void>();

  async function send(req: SendRequest): Promise<Answer> {
    if (closed) throw new Error('the transport is closed');
    req.signal?.throwIfAborted();
    const { url } = req;
    const tls = url.protocol === 'https:';
    let request: http.ClientRequest | undefined;
    let response: http.IncomingMessage | undefined;
    /** Why the exchange was cut short by us: thrown instead of what the torn socket says. */
    let stopped: unknown;
    const stop = (why: unknown): void => {
      if (stopped !== undefined) return;
      stopped = why;
      request?.destroy(why instanceof Error ? why : new Error(String(why)));
    };
    let connecting: NodeJS.Timeout | undefined = setTimeout(() => stop(new RequestTimeout('connect', connectTimeoutMs)), connectTimeoutMs);
    // Still connecting when the whole call's time is up is a connect timeout: nothing left.
    const overall = setTimeout(() => stop(connecting === undefined ? new RequestTimeout('answer', timeoutMs) : new RequestTimeout('connect', timeoutMs)), timeoutMs);
    const connected = (): void => {
      clearTimeout(connecting);
      connecting = undefined;
    };
    const onAbort = (): void => stop(req.signal?.reason ?? new Error('aborted'));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let settle = (): void => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    inFlight.set(settled, stop);
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const options: https.RequestOptions = { method: req.method, headers: { ...req.headers }, agent: agentFor(url) };
        if (req.body !== undefined) options.headers = { ...options.headers, 'content-length': String(Buffer.byteLength(req.body)) };
        try {
          request = moduleFor(tls).request(url, options, (res) => resolve((response = res)));
        } catch (e) {
          reject(new RequestInvalid(e));
          return;
        }
        request.on('error', reject);
        request.on('socket', (socket: Socket) => {
          // A kept-alive socket is connected already; a fresh one is once its handshake is done.
          if (request?.reusedSocket || !socket.connecting) connected();
          else socket.once(tls ? 'secureConnect' : 'connect', connected);
        });
        request.end(req.body);
      });
      connected();
      const body = await readCapped(res, maxBodyBytes);
      if (stopped !== undefined) throw stopped;
      return { status: res.statusCode ?? 0, headers: headersOf(res), ...body };
    } catch (e) {
      throw stopped ?? e;
    } finally {
      clearTimeout(overall);
      clearTimeout(connecting);
      req.signal?.removeEventListener('abort', onAbort);
      // Whatever happened, nothing of this exchange stays open: an unfinished request's socket
      // is destroyed (a finished one is already back in the Agent's pool).
      if (request && !(response?.complete ?? false)) request.destroy();
      inFlight.delete(settled);
      settle();
    }
  }

  return {
    send,
    get closed() {
      return closed;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(inFlight.keys()), new Promise<void>((resolve) => (timer = setTimeout(resolve, closeGraceMs)))]);
        clearTimeout(timer);
        for (const cut of inFlight.values()) cut(new Error('the client was closed before the API answered'));
        await Promise.all(inFlight.keys());
      }
      httpAgent?.destroy();
      httpsAgent?.destroy();
    },
  };
}

/** node:http joins most repeated headers into one string; like undici, give them as arrays. */
function headersOf(res: http.IncomingMessage): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [name, values] of Object.entries(res.headersDistinct)) {
    if (values === undefined) continue;
    out[name] = values.length === 1 ? values[0] : values;
  }
  return out;
}

/** The body as text, unless it is over `cap` bytes; the stream is destroyed either way. */
export async function readCapped(body: AsyncIterable<unknown> & { destroy(): unknown }, cap: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buf.length;
      if (size > cap) return { text: '', truncated: true };
      chunks.push(buf);
    }
  } finally {
    // Leaving the loop early already destroys it; this covers the error paths too, so the
    // connection never sits on an unread body.
    body.destroy();
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}
