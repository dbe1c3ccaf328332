/**
 * The local endpoint's HTTP plumbing: HTTP/1.1 served on 127.0.0.1 (exchange.ts) and sent on
 * to the upstream (upstream.ts), both on http1.ts. Every decision (access, headers, 401,
 * redirects, hold) is in policy.ts and tokens.ts; this file applies them and streams bytes.
 *
 * Every tool call passes here, so the request path keeps to what it needs: a request is
 * handled once its (small) body is in, a plain answer is relayed chunk by chunk without a
 * stream pipeline, the upstream target is parsed once per upstream URL, the token is taken
 * without a promise when no rotation holds it, and log fields are built only when logged.
 */
import { hash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../log.js';
import { RotatorError } from '../../errors.js';
import { validateApiUrl } from '../../api/url.js';
import {
  authFailureMessage,
  checkAccess,
  type ConnectionLimits,
  forwardRequestHeaders,
  forwardResponseHeaders,
  isEventStream,
  jsonRpcError,
  parseRoute,
  type Route,
  redirectMessage,
  rewriteEndpointEvent,
  upstreamAction,
  upstreamPathAllowed,
  upstreamTarget,
} from './policy.js';
import type { PeerLookup } from './peer.js';
import { connectionGate } from './gate.js';
import type { RouteEntry } from './routes.js';
import type { SlotTokens } from './tokens.js';
import { endpointEventRewriter, messageIds, responseWatcher } from './sse.js';
import { LegacyCalls } from './legacy.js';
import { targetOf, Upstream, type UpstreamCall, type UpstreamResponse, type UpstreamTarget } from './upstream.js';
import { serveHttp, type Exchange } from './exchange.js';

export interface EndpointOptions {
  port: number;
  lookup: (secret: string) => RouteEntry | null;
  tokens: SlotTokens;
  log: Logger;
  /** JSON-RPC messages are small; a POST body is buffered (for the retry after a 401) up to this. */
  maxBodyBytes?: number;
  connectTimeoutMs?: number;
  /**
   * Idle limit on a response stream (the upstream request's socket, the server socket). 0, the
   * default, means none: an MCP GET stream may stay quiet for hours. Tests set a small one to
   * show that such a cut would be seen.
   */
  streamIdleTimeoutMs?: number;
  /**
   * The peer uid of a connection (Linux: /proc/net/tcp); null = no such check (tests,
   * other systems). Default: the platform's, checked against `ownUid`.
   */
  peerLookup?: PeerLookup | null;
  ownUid?: number;
  limits?: ConnectionLimits;
  /** A connection that sends no complete request head within this is closed (slowloris, idle floods). */
  headerTimeoutMs?: number;
}

export interface Endpoint {
  port: number;
  origin: string;
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

/** A short, one-way label for a session id in logs (the id itself is a header value). */
const sessionLabel = (id: string | string[] | undefined): string | undefined =>
  typeof id === 'string' && id !== '' ? hash('sha256', id, 'hex').slice(0, 8) : undefined;

export async function startEndpoint(opts: EndpointOptions): Promise<Endpoint> {
  const { lookup, tokens, log } = opts;
  // 0 (tests): any free port, known once listening.
  let port = opts.port;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const idle = opts.streamIdleTimeoutMs ?? 0;
  // A POST may answer with one JSON body only when a long tool call ends, and a GET stream
  // may be quiet for hours: no header or body deadline unless one is set (tests).
  const upstream = new Upstream({ connectTimeoutMs: opts.connectTimeoutMs ?? 15_000, idleMs: idle });
  // The entry's own URL, validated and parsed once (routes are reloaded every 2 s: keyed by text).
  const targets = new Map<string, UpstreamTarget>();
  const debug = log.isLevelEnabled('debug');
  let origin = `http://127.0.0.1:${port}`;
  const legacy = new LegacyCalls();
  const gate = connectionGate(opts, () => port, log);
  // Streamable HTTP sessions seen per entry: a route secret renewed by revoke-now keeps
  // serving the sessions opened with it (running clients hold the old URL), nothing new.
  const sessions = new Map<number, Set<string>>();
  const knownSession = (id: number, sid: string | string[] | undefined): boolean => typeof sid === 'string' && sessions.get(id)?.has(sid) === true;
  const rememberSession = (id: number, sid: string | string[] | undefined): void => {
    if (typeof sid !== 'string' || sid === '') return;
    let set = sessions.get(id);
    if (!set) sessions.set(id, (set = new Set()));
    if (set.size >= 1024) set.delete(set.values().next().value as string);
    set.add(sid);
  };

  const handle = async (ex: Exchange): Promise<void> => {
    // Served only once the connection's peer is known to be allowed (see connectionGate).
    const ok = gate.admitted(ex.socket);
    if (ok !== true && !(await ok)) return void ex.destroy();
    const t0 = performance.now();
    const method = ex.method;
    const headers = ex.headers;
    const finish = (status: number, body: string, type: string, fields: Record<string, unknown> = {}, extra: Record<string, string> = {}): void => {
      if (!ex.headersSent) {
        ex.writeHead(status, { ...extra, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
        ex.end(body);
      } else ex.destroy();
      if (debug || status >= 500) log[status >= 500 ? 'warn' : 'debug']({ method, status, session: sessionLabel(headers['mcp-session-id']), ms: Math.round(performance.now() - t0), ...fields }, 'endpoint request refused');
    };

    const access = checkAccess({ host: headers.host, origin: headers.origin, port });
    if (!access.ok) return finish(access.status, 'Forbidden\n', 'text/plain', { reason: access.reason });
    const rawUrl = ex.url;
    // Origin-form only ("/path"); an absolute-form target is a proxy request, not ours.
    if (!rawUrl.startsWith('/')) return finish(400, 'Bad request\n', 'text/plain');
    const qAt = rawUrl.indexOf('?');
    const pathname = qAt < 0 ? rawUrl : rawUrl.slice(0, qAt);
    const search = qAt < 0 ? '' : rawUrl.slice(qAt);
    // OAuth discovery is answered here: the endpoint is not an authorization server, and a
    // client that finds one would start a login flow instead of using the broker.
    if (pathname.startsWith('/.well-known/')) return finish(404, 'Not found\n', 'text/plain');
    const route = parseRoute(pathname);
    const entry = route ? lookup(route.secret) : null;
    if (!route || !entry) return finish(404, 'Not found\n', 'text/plain');
    const name = entry.name;
    // Only the entry's own URL, and paths the upstream announced on a stream still open.
    if (!upstreamPathAllowed(route, route.upstreamPath !== null && legacy.isOpen(legacyKey(route, search)))) return finish(404, 'Not found\n', 'text/plain', { route: name, reason: 'path' });
    // A renewed (old) secret: only for the sessions it already carried.
    if (entry.retired && !knownSession(entry.id, headers['mcp-session-id']) && route.upstreamPath === null) return finish(404, 'Not found\n', 'text/plain', { route: name, reason: 'renewed' });
    if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') return finish(405, 'Method not allowed\n', 'text/plain', { route: name }, { allow: 'GET, POST, DELETE' });

    let target: UpstreamTarget;
    try {
      if (route.upstreamPath === null && search === '') {
        let t = targets.get(entry.upstreamUrl);
        if (!t) {
          if (targets.size >= 64) targets.clear();
          targets.set(entry.upstreamUrl, (t = targetOf(upstreamTarget(validateApiUrl(entry.upstreamUrl).href, route, search))));
        }
        target = t;
      } else target = targetOf(upstreamTarget(validateApiUrl(entry.upstreamUrl).href, route, search));
      const loading = upstream.ready(target);
      if (loading) await loading;
    } catch {
      return finish(502, jsonRpcError(null, `mcp-token-rotator: the recorded server URL for "${name}" cannot be used (https only, plain http only to loopback); run "mcp-token-rotator broker status".`), 'application/json', { route: name });
    }

    // The body is in (exchange.ts hands a request over once it is); only a POST's is forwarded.
    if (ex.tooLarge) return finish(413, jsonRpcError(null, `mcp-token-rotator: request body over ${maxBody} bytes`), 'application/json', { route: name });
    const body: Buffer | null = method === 'POST' ? ex.body : null;

    // Legacy HTTP+SSE: a POST to a session's message endpoint (an upstream path) is answered
    // 202 and its response comes on the GET stream; its requests count until then.
    const callKey = method === 'POST' && route.upstreamPath !== null ? legacyKey(route, search) : null;
    const callIds = callKey !== null && body !== null ? messageIds(body.toString('utf8'), 'request') : [];

    // The client went away (a cancelled call, a closed stream): the upstream request goes too.
    let gone = false;
    let current: UpstreamCall | null = null;
    let sent: (() => void) | null = null;
    ex.onClose(() => {
      gone = true;
      current?.abort();
      sent?.();
    });

    for (let attempt = 0; ; attempt++) {
      const heldMs0 = performance.now();
      const token = (attempt === 0 ? tokens.peek(entry.slot) : null) ?? (await tokens.get(entry.slot, { fresh: attempt > 0 }));
      const heldMs = Math.round(performance.now() - heldMs0);
      if (gone) return;
      if (!token) {
        return finish(502, jsonRpcError(body, `mcp-token-rotator: no token is stored for "${name}" (broker slot ${entry.slot}). Run "mcp-token-rotator broker status"; "broker disable" puts the token back in the config.`), 'application/json', { route: name, slot: entry.slot });
      }
      // On the wire with this token: a rotation lets it finish before regenerate kills it.
      const done = (sent = tokens.track(entry.slot));
      const unsend = callKey !== null ? legacy.sent(callKey, callIds, () => tokens.track(entry.slot)) : () => undefined;
      let up: UpstreamResponse;
      try {
        current = upstream.send(target, method, forwardRequestHeaders(headers, token.reveal()), body);
        up = await current.response;
      } catch (e) {
        done();
        unsend();
        if (gone) return;
        const code = (e as { code?: string }).code ?? 'network error';
        return finish(502, jsonRpcError(body, `mcp-token-rotator: could not reach the Certorix MCP server for "${name}" at ${target.origin} (${code}).`), 'application/json', { route: name, err: code });
      }
      const status = up.statusCode;
      const action = upstreamAction(status, attempt);
      // A GET stream is open now and may stay so for hours: it no longer holds a rotation back.
      if (action !== 'pass' || method === 'GET') done();
      if (action !== 'pass' || status !== 202) unsend();
      if (action !== 'pass') {
        // Not passed on: read to its end so the connection goes back to the pool.
        up.discard();
        if (action === 'retry') {
          log.info({ route: name, session: sessionLabel(headers['mcp-session-id']), slot: entry.slot, fingerprint: token.fingerprint }, 'upstream refused the token (401); reloading it and retrying once');
          continue;
        }
        if (action === 'fail-auth') return finish(502, jsonRpcError(body, authFailureMessage(name, entry.slot)), 'application/json', { route: name, slot: entry.slot, fingerprint: token.fingerprint, upstream: 401 });
        return finish(502, jsonRpcError(body, redirectMessage(name)), 'application/json', { route: name, upstream: status });
      }
      if (status < 300) rememberSession(entry.id, up.headers['mcp-session-id'] ?? headers['mcp-session-id']);
      const stream = isEventStream(up.headers['content-type']);
      ex.writeHead(status, forwardResponseHeaders(up.headers));
      let streamKey: string | null = null;
      try {
        if (stream && method === 'GET') {
          // A standalone stream: its head goes out now, events as they come, for hours.
          ex.flushHeaders();
          const localBase = `${origin}/${route.secret}/${encodeURIComponent(route.name)}`;
          const rewrite = (d: string): string | null => {
            const local = rewriteEndpointEvent(d, entry.upstreamUrl, localBase);
            const u = local === null ? null : new URL(local);
            const r = u ? parseRoute(u.pathname) : null;
            if (u && r?.upstreamPath != null) legacy.open((streamKey = legacyKey(r, u.search)));
            return local;
          };
          const watch = responseWatcher(
            () => streamKey !== null,
            (id) => {
              if (streamKey !== null) legacy.answered(streamKey, id);
            },
          );
          await pipeline(up.toReadable(), endpointEventRewriter(rewrite), watch, ex.writable());
        } else {
          await relay(up, ex, stream);
        }
      } catch {
        // Client went away or upstream cut the stream: the response ends; nothing to answer.
        ex.destroy();
      } finally {
        done();
        if (streamKey !== null) legacy.closed(streamKey);
      }
      if (debug) log.debug({ route: name, method, session: sessionLabel(headers['mcp-session-id']), status, heldMs, ms: Math.round(performance.now() - t0), retried: attempt > 0 }, 'endpoint request');
      return;
    }
  };

  // The request deadlines (head, whole request, keep-alive) are node:http's defaults as the
  // endpoint set them before (exchange.ts applies them); answers have none unless `idle` is set.
  const served = serveHttp({
    maxBodyBytes: maxBody,
    headersTimeoutMs: opts.headerTimeoutMs ?? 10_000,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5_000,
    idleMs: idle,
    onConnection: (s) => gate.accept(s),
    onExchange: (ex) => {
      handle(ex).catch((e: unknown) => {
        log.error({ err: e instanceof Error ? e.message : String(e) }, 'endpoint request failed');
        if (!ex.headersSent && !ex.finished) {
          const body = jsonRpcError(null, 'mcp-token-rotator: internal error in the local endpoint; see the daemon log.');
          try {
            ex.writeHead(502, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
            ex.end(body);
          } catch {
            ex.destroy();
          }
        } else ex.destroy();
      });
    },
  });
  const server = served.server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') {
        reject(
          new RotatorError('E_BROKER', `The broker's local endpoint cannot listen on 127.0.0.1:${port}: the port is taken by another program.`, {
            hint: `Stop the program using port ${port} (find it with "ss -ltnp 'sport = :${port}'" or "lsof -i :${port}"), then start the daemon again. Or set "broker": { "port": <free port> } in the settings file and run "mcp-token-rotator broker disable" then "broker enable", so the configs point at the new port.`,
            cause: e,
          }),
        );
      } else reject(e);
    });
    server.listen(port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  log.info({ port, origin }, 'broker endpoint listening');

  return {
    port,
    origin,
    close: async () => {
      await served.close();
      upstream.close();
    },
  };
}

/** One legacy session's message endpoint: the route and the upstream path and query (which names the session). */
function legacyKey(route: Route, search: string): string {
  return `${route.secret} ${route.upstreamPath ?? ''}${search}`;
}

/**
 * A streamed answer's head waits this long for its first event, so that the two leave in one
 * packet (one wake-up of the client instead of two); a long tool call's head still goes out
 * at once after it, so the client sees the call accepted.
 */
const HEAD_WAIT_MS = 10;

/**
 * The upstream's answer relayed to the client as it comes, ended when it ends. What arrives
 * in one turn of the event loop (an event and the end of the answer, mostly) is written at
 * once: every write is a packet, and a packet is a wake-up of the client's process. Rejects
 * when the upstream cuts the answer (the client must see it cut, not complete) or the
 * client goes away.
 */
function relay(up: UpstreamResponse, ex: Exchange, stream: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let wrote = false;
    let corked = false;
    let headTimer: NodeJS.Timeout | undefined;
    if (stream && up.readableLength === 0) {
      headTimer = setTimeout(() => {
        if (!wrote) ex.flushHeaders();
      }, HEAD_WAIT_MS);
    }
    const uncork = (): void => {
      corked = false;
      ex.uncork();
    };
    ex.onDrain(() => up.resume());
    ex.onClose(() => {
      clearTimeout(headTimer);
      up.destroy();
      reject(new Error('the client went away'));
    });
    // Last: what already came is handed over at once.
    up.consume({
      data: (chunk) => {
        if (!wrote) {
          wrote = true;
          clearTimeout(headTimer);
        }
        if (!corked) {
          corked = true;
          ex.cork();
          setImmediate(uncork);
        }
        if (!ex.write(chunk)) up.pause();
      },
      end: () => {
        clearTimeout(headTimer);
        ex.end();
        resolve();
      },
      error: (e) => {
        clearTimeout(headTimer);
        reject(e);
      },
    });
  });
}
