/**
 * The endpoint's requests to the upstream MCP server, on node:http/https with keep-alive
 * agents (one pool per upstream host:port, as the agents key their sockets by it).
 *
 * Why not undici: its first request compiles a WebAssembly HTTP parser, which leaves the
 * daemon about 12 MiB bigger for good, and its per-request machinery (promises, abort
 * signals, a body stream wrapper) cost the endpoint more than the node:http parser the
 * daemon's own server already uses (docs/benchmarks.md, "Local endpoint").
 *
 * Deadlines: connecting is bounded (`connectTimeoutMs`); an answer is not (a tool call may
 * run long, a GET stream may be quiet for hours) unless `idleMs` is set (tests). A pooled
 * connection is dropped before the server's keep-alive timeout would close it under us
 * (node's agent reads the server's `Keep-Alive: timeout=` hint and keeps 1 s of margin).
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';

/** How long a pooled connection stays open unused, when the server does not say less. */
const FREE_SOCKET_MS = 4_000;

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

export interface UpstreamCall {
  req: ClientRequest;
  /** The response head; rejects with an error carrying `code` when no answer came. */
  response: Promise<IncomingMessage>;
}

export class Upstream {
  readonly #http: HttpAgent;
  #https: HttpsAgent | null = null;
  readonly #connectTimeoutMs: number;
  readonly #idleMs: number;

  constructor(opts: { connectTimeoutMs?: number; idleMs?: number } = {}) {
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.#idleMs = opts.idleMs ?? 0;
    this.#http = new HttpAgent({ keepAlive: true, timeout: FREE_SOCKET_MS, scheduling: 'lifo', noDelay: true } as ConstructorParameters<typeof HttpAgent>[0]);
  }

  /**
   * node:https (and tls) are loaded at the first https upstream only: a daemon whose endpoint
   * has not forwarded anything yet does not carry them.
   */
  ready(target: UpstreamTarget): Promise<void> | null {
    if (!target.https || this.#https) return null;
    return this.#loadHttps();
  }

  async #loadHttps(): Promise<void> {
    const { Agent } = await import('node:https');
    this.#https ??= new Agent({ keepAlive: true, timeout: FREE_SOCKET_MS, scheduling: 'lifo', noDelay: true, minVersion: 'TLSv1.3' } as ConstructorParameters<typeof Agent>[0]);
  }

  /** Sends the request (after `ready(target)`); `body` null = none. */
  send(target: UpstreamTarget, method: string, headers: OutgoingHttpHeaders, body: Buffer | null): UpstreamCall {
    if (body !== null) headers['content-length'] = body.length;
    const agent = target.https ? this.#https : this.#http;
    if (!agent) throw new Error('Upstream.ready was not awaited for an https target');
    // node:http's request() with an https agent speaks TLS: the agent makes the socket.
    const req = httpRequest({ agent, protocol: target.https ? 'https:' : 'http:', hostname: target.hostname, port: target.port, path: target.path, method, headers, setHost: true });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', (e: NodeJS.ErrnoException) => reject(e instanceof UpstreamError ? e : new UpstreamError(e.code ?? 'network error', e.message)));
    });
    // A pooled socket carries the agent's free-socket timer: in use, only ours applies.
    if (this.#idleMs > 0) req.setTimeout(this.#idleMs, () => req.destroy(new UpstreamError('EIDLE', 'the upstream sent nothing within the idle limit')));
    else req.setTimeout(0);
    req.once('socket', (s) => {
      if (!s.connecting) return;
      const t = setTimeout(() => req.destroy(new UpstreamError('ETIMEDOUT', 'connecting to the upstream timed out')), this.#connectTimeoutMs);
      s.once(target.https ? 'secureConnect' : 'connect', () => clearTimeout(t));
      s.once('close', () => clearTimeout(t));
    });
    req.end(body ?? undefined);
    return { req, response };
  }

  close(): void {
    this.#http.destroy();
    this.#https?.destroy();
  }
}
