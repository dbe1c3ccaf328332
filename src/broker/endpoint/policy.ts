/**
 * The local endpoint's decisions, as pure functions (tested with tables in
 * test/broker/endpoint-policy.test.ts). The HTTP plumbing in server.ts only applies them.
 *
 * The endpoint listens on loopback, which every local user and process can reach, and adds a
 * live Certorix token to what it forwards. So it answers only requests that carry a route
 * secret that only the converted configs hold, on a Host it serves (DNS rebinding), from no
 * foreign browser Origin; and it never lets an upstream 401 reach a client, because some
 * clients answer a 401 by starting an OAuth flow against the server.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** `/<routeSecret>/<name>` and, for URLs the upstream hands out (legacy SSE), `/<secret>/<name>/_/<upstream path>`. */
export interface Route {
  secret: string;
  name: string;
  /** The upstream path after `/_/` (with its leading slash), or null for the entry's own URL. */
  upstreamPath: string | null;
}

/** The marker segment under which upstream-relative paths travel (see `rewriteEndpointEvent`). */
export const UPSTREAM_PATH_MARK = '_';

const SEGMENT = /^[A-Za-z0-9_-]{1,128}$/;

export function parseRoute(pathname: string): Route | null {
  // ['', secret, name, ...rest], found with indexOf: every request passes here.
  if (pathname.charCodeAt(0) !== 0x2f) return null;
  const a = pathname.indexOf('/', 1);
  if (a < 0) return null;
  const secret = pathname.slice(1, a);
  const b = pathname.indexOf('/', a + 1);
  const rawName = b < 0 ? pathname.slice(a + 1) : pathname.slice(a + 1, b);
  const name = rawName.includes('%') ? decodeSegment(rawName) : rawName;
  if (!SEGMENT.test(secret) || name === null || name === '') return null;
  // "/<secret>/<name>" or "/<secret>/<name>/".
  if (b < 0 || b === pathname.length - 1) return { secret, name, upstreamPath: null };
  const c = pathname.indexOf('/', b + 1);
  const mark = c < 0 ? pathname.slice(b + 1) : pathname.slice(b + 1, c);
  if (mark !== UPSTREAM_PATH_MARK) return null;
  return { secret, name, upstreamPath: c < 0 ? '/' : pathname.slice(c) };
}

function decodeSegment(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export type AccessDecision = { ok: true } | { ok: false; status: 400 | 403 | 404; reason: string };

/**
 * Host and Origin, before the route is even looked up. `Host` must name the endpoint itself
 * (a page on evil.example whose name resolves to 127.0.0.1 sends `Host: evil.example:<port>`);
 * a browser's `Origin` must be the endpoint's own origin: a page served by any other local
 * port (a dev server, another user's listener) is another origin and must not reach the token.
 */
export function checkAccess(h: { host: string | undefined; origin: string | undefined; port: number }): AccessDecision {
  const host = (h.host ?? '').toLowerCase();
  if (host !== `127.0.0.1:${h.port}` && host !== `localhost:${h.port}`) return { ok: false, status: 403, reason: 'host' };
  if (h.origin !== undefined && !isOwnOrigin(h.origin, h.port)) return { ok: false, status: 403, reason: 'origin' };
  return { ok: true };
}

/** `http://127.0.0.1:<port>` or `http://localhost:<port>`, exactly: the endpoint's own origin. */
export function isOwnOrigin(origin: string, port: number): boolean {
  const o = origin.toLowerCase();
  return o === `http://127.0.0.1:${port}` || o === `http://localhost:${port}`;
}

/**
 * A path on the upstream other than the entry's own URL is forwarded only when the upstream
 * itself announced it (the legacy HTTP+SSE `endpoint` event, on a stream that is still open):
 * the token goes to the MCP server's endpoints, never to another API on the same host.
 */
export function upstreamPathAllowed(route: Route, announced: boolean): boolean {
  return route.upstreamPath === null || announced;
}

// ---- connections: who may connect, and how many

/**
 * Linux: the uid owning each TCP socket connected from 127.0.0.1 to 127.0.0.1:`serverPort`,
 * by its local port, from the text of /proc/net/tcp or /proc/net/tcp6 (IPv4-mapped). That is
 * the client's socket of an accepted connection (its local port is the accepted socket's
 * remote port): the uid of the process that connected. Lines are
 * `sl local rem st tx:rx tr:when retrnsmt uid ...`, addresses in hex, ports big-endian hex.
 */
export function peerUidsFromProcNet(text: string, serverPort: number): Map<number, number> {
  const out = new Map<number, number>();
  const want = ':' + portHex(serverPort);
  let at = text.indexOf('\n') + 1; // skip the header
  while (at > 0 && at < text.length) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, end < 0 ? text.length : end);
    at = end < 0 ? text.length : end + 1;
    // Cheap reject before splitting: most lines are other connections.
    if (!line.includes(want)) continue;
    const f = line.trim().split(/\s+/);
    const local = f[1] ?? '';
    const rem = f[2] ?? '';
    if (!rem.endsWith(want) || !isLoopbackHex(rem) || !isLoopbackHex(local)) continue;
    const localPort = parseInt(local.slice(local.indexOf(':') + 1), 16);
    const uid = Number(f[7]);
    if (Number.isInteger(localPort) && Number.isInteger(uid)) out.set(localPort, uid);
  }
  return out;
}

const portHex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');

/** 127.0.0.1 as /proc/net/tcp prints it (either byte order), bare or IPv4-mapped in tcp6. */
function isLoopbackHex(addrPort: string): boolean {
  const a = addrPort.slice(0, addrPort.indexOf(':')).toUpperCase();
  const mapped = a.length === 32 && (a.startsWith('0000000000000000FFFF0000') || a.startsWith('00000000000000000000FFFF'));
  const v4 = a.length === 8 ? a : mapped ? a.slice(24) : null;
  return v4 === '0100007F' || v4 === '7F000001';
}

/**
 * Linux: the uid listening on 127.0.0.1:`port` (state 0A) in /proc/net/tcp or tcp6 text; null
 * when no such listener is there. `broker status` and `doctor` use it to name a stranger.
 */
export function listenerUidFromProcNet(text: string, port: number): number | null {
  const want = ':' + portHex(port);
  for (const line of text.split('\n').slice(1)) {
    if (!line.includes(want)) continue;
    const f = line.trim().split(/\s+/);
    const local = f[1] ?? '';
    if (f[3] !== '0A' || !local.endsWith(want)) continue;
    // 127.0.0.1, and the wildcard addresses (0.0.0.0, ::), take connections to 127.0.0.1.
    if (!isLoopbackHex(local) && !/^0+$/.test(local.slice(0, local.indexOf(':')))) continue;
    const uid = Number(f[7]);
    if (Number.isInteger(uid)) return uid;
  }
  return null;
}

export interface ConnectionLimits {
  /** Connections served at once, all peers together. */
  total: number;
  /** Connections served at once per peer uid (Linux; elsewhere every peer counts as one). */
  perPeer: number;
  /** Accepted connections still waiting for their peer's uid; more are closed at once. */
  pending: number;
}

/**
 * Sized well under the usual 1024 open files (each served connection may hold an upstream one
 * too), so a flood of connections never takes the file descriptors a rotation needs.
 */
export const CONNECTION_LIMITS: ConnectionLimits = { total: 256, perPeer: 192, pending: 128 };

export type AdmitDecision = { ok: true } | { ok: false; reason: 'other-user' | 'peer-unknown' | 'too-many' | 'too-many-peer' };

/**
 * Whether an accepted connection is served. On Linux the peer's uid is known (`peerUid`; null
 * when it could not be found, e.g. a connection from another network namespace: refused) and
 * only the daemon's own uid is served. Elsewhere (`peerUid` undefined) the route secret is the
 * protection, and the caps bound what a flood can hold.
 */
export function admitConnection(a: { peerUid: number | null | undefined; ownUid: number; total: number; perPeer: number; limits: ConnectionLimits }): AdmitDecision {
  if (a.peerUid === null) return { ok: false, reason: 'peer-unknown' };
  if (a.peerUid !== undefined && a.peerUid !== a.ownUid) return { ok: false, reason: 'other-user' };
  if (a.total >= a.limits.total) return { ok: false, reason: 'too-many' };
  if (a.perPeer >= a.limits.perPeer) return { ok: false, reason: 'too-many-peer' };
  return { ok: true };
}

/** Where a request goes: the entry's own URL (plus the client's query), or a path on its origin. */
export function upstreamTarget(upstreamUrl: string, route: Route, search: string): URL {
  const base = new URL(upstreamUrl);
  if (route.upstreamPath === null) {
    const u = new URL(base.href);
    const extra = new URLSearchParams(search);
    for (const [k, v] of extra) u.searchParams.append(k, v);
    return u;
  }
  // Same origin only: the token goes nowhere the user did not put it. The path is set, not
  // resolved, so "//evil.example/x" stays a path on the upstream instead of naming a host.
  const u = new URL(base.origin);
  u.pathname = route.upstreamPath;
  u.search = search;
  if (u.origin !== base.origin) throw new Error('upstream path left the origin');
  return u;
}

/** RFC 9110 7.6.1 plus the legacy ones: meaningful for one connection, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/**
 * Request headers not forwarded upstream besides hop-by-hop: the client's own credentials
 * (replaced by the current token), what names the local side (host, origin, referer, cookies
 * of 127.0.0.1), and what the body's framing or encoding decides (the forwarder sets the length;
 * identity encoding keeps event streams unbuffered).
 */
const DROP_REQUEST = new Set(['host', 'authorization', 'cookie', 'origin', 'referer', 'content-length', 'accept-encoding', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);

/**
 * Response headers not passed back: hop-by-hop, `WWW-Authenticate` (it invites an OAuth
 * flow), cookies for a domain the client never talked to, and `Location` (redirects are
 * answered by the endpoint itself, see `upstreamAction`).
 */
const DROP_RESPONSE = new Set(['www-authenticate', 'set-cookie', 'location', 'alt-svc', 'strict-transport-security']);

const NONE_LISTED: ReadonlySet<string> = new Set();

/** The header names a Connection header lists (hop-by-hop for this hop only). */
function connectionListed(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): ReadonlySet<string> {
  const c = headers['connection'];
  if (c === undefined) return NONE_LISTED;
  const v = Array.isArray(c) ? c.join(',') : c;
  // The usual values name only hop-by-hop headers that are dropped anyway.
  if (v === 'keep-alive' || v === 'close' || v === 'Keep-Alive' || v === 'Close') return NONE_LISTED;
  return new Set(
    v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** The headers sent upstream: the client's (Mcp-*, Last-Event-ID, Accept, Content-Type, ...) minus the above, plus the token. */
export function forwardRequestHeaders(incoming: IncomingHttpHeaders, bearer: string): Record<string, string> {
  const listed = connectionListed(incoming);
  const out: Record<string, string> = {};
  for (const k in incoming) {
    const v = incoming[k];
    const name = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(name) || DROP_REQUEST.has(name) || listed.has(name)) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  out['accept-encoding'] = 'identity';
  out['authorization'] = `Bearer ${bearer}`;
  return out;
}

/** The headers passed back to the client; event streams are marked so no proxy buffers them. */
export function forwardResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = connectionListed(upstream);
  const stream = isEventStream(upstream['content-type']);
  const out: Record<string, string | string[]> = {};
  for (const k in upstream) {
    const v = upstream[k];
    const name = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(name) || DROP_RESPONSE.has(name) || listed.has(name)) continue;
    // An event stream goes out chunked, as it comes (no length, which `delete` would also make slow).
    if (stream && (name === 'content-length' || name === 'x-accel-buffering' || name === 'cache-control')) continue;
    out[name] = v;
  }
  if (stream) {
    out['x-accel-buffering'] = 'no';
    out['cache-control'] = 'no-cache, no-transform';
  }
  return out;
}

export function isEventStream(contentType: string | string[] | undefined): boolean {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  if (typeof v !== 'string') return false;
  if (v === 'text/event-stream') return true;
  const semi = v.indexOf(';');
  return (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase() === 'text/event-stream';
}

/**
 * What to do with the upstream's answer. A 401 means the token was refused before anything
 * was processed, so one retry with a freshly loaded token is safe; a second 401 becomes a
 * 502 naming the fix. A redirect is never followed with the token attached, and never passed
 * on (the client would go to the upstream directly, without a token, and meet a 401).
 */
export type UpstreamAction = 'pass' | 'retry' | 'fail-auth' | 'fail-redirect';

export function upstreamAction(status: number, attempt: number): UpstreamAction {
  if (status === 401) return attempt === 0 ? 'retry' : 'fail-auth';
  if (status >= 300 && status < 400 && status !== 304) return 'fail-redirect';
  return 'pass';
}

/**
 * A JSON-RPC error a client shows to its user (with HTTP 502: not 401, which invites OAuth).
 * The id is the request's when the body was one JSON-RPC request, else null.
 */
export function jsonRpcError(body: Buffer | null, message: string, code = -32001): string {
  return JSON.stringify({ jsonrpc: '2.0', id: requestId(body), error: { code, message } });
}

function requestId(body: Buffer | null): string | number | null {
  if (!body || body.length === 0 || body.length > 64 * 1024) return null;
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    const id = v && typeof v === 'object' && !Array.isArray(v) ? (v as { id?: unknown }).id : undefined;
    return typeof id === 'string' || typeof id === 'number' ? id : null;
  } catch {
    return null;
  }
}

export function authFailureMessage(name: string, slot: string): string {
  return (
    `mcp-token-rotator: Certorix refused the current token for "${name}" (broker slot ${slot}). ` +
    'Run "mcp-token-rotator status" to see the token\'s state; if it was regenerated elsewhere (the web UI), ' +
    'pipe the new one to "mcp-token-rotator set-token". Calls resume without restarting this client.'
  );
}

export function redirectMessage(name: string): string {
  return `mcp-token-rotator: the Certorix MCP server for "${name}" answered with a redirect, which is not followed with the token attached. Check the server URL ("mcp-token-rotator broker status") and run "broker disable" and "broker enable" again if it moved.`;
}

/**
 * The legacy HTTP+SSE transport's first event names the URL to POST to, usually relative to
 * the upstream (`/messages?sessionId=...`). SDK clients resolve it against the URL they
 * connected to and refuse another origin, so it is rewritten to the same path under this
 * route: `<local route>/_/<upstream path>`. An endpoint on another origin than the upstream's
 * is refused (null): the token would follow it there.
 */
export function rewriteEndpointEvent(data: string, upstreamUrl: string, localRouteBase: string): string | null {
  let target: URL;
  const up = new URL(upstreamUrl);
  try {
    target = new URL(data.trim(), up);
  } catch {
    return null;
  }
  if (target.origin !== up.origin) return null;
  return `${localRouteBase}/${UPSTREAM_PATH_MARK}${target.pathname}${target.search}`;
}

// ---- rotation hold

export interface HoldState {
  /** Slots announced and not yet stored or aborted, with when the hold ends at the latest. */
  held: Map<string, { generation: number; deadline: number }>;
}

/** How long a request may be held: a leak (`revoke-now`) does not wait long. */
export const HOLD_MS = { rotate: 20_000, revoke: 4_000 } as const;

export function applyAnnounce(s: HoldState, slots: string[], generation: number, revoke: boolean, now: number): void {
  const deadline = now + (revoke ? HOLD_MS.revoke : HOLD_MS.rotate);
  for (const slot of slots) s.held.set(slot, { generation, deadline });
}

/** `stored` or `aborted`: the slots of that generation (or older) are released. */
export function applyRelease(s: HoldState, slots: string[], generation: number): string[] {
  const released: string[] = [];
  for (const slot of slots) {
    const h = s.held.get(slot);
    if (h && h.generation <= generation) {
      s.held.delete(slot);
      released.push(slot);
    }
  }
  return released;
}

/** Pass now, or wait at most `ms` (the hold's bound; released earlier by `stored`). */
export function holdDecision(s: HoldState, slot: string, now: number): { hold: false } | { hold: true; ms: number } {
  const h = s.held.get(slot);
  if (!h) return { hold: false };
  if (now >= h.deadline) return { hold: false };
  return { hold: true, ms: h.deadline - now };
}
