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
  const parts = pathname.split('/');
  // ['', secret, name, ...rest]
  if (parts.length < 3 || parts[0] !== '') return null;
  const secret = parts[1] ?? '';
  const name = decodeSegment(parts[2] ?? '');
  if (!SEGMENT.test(secret) || name === null || name === '') return null;
  if (parts.length === 3) return { secret, name, upstreamPath: null };
  if (parts.length === 4 && parts[3] === '') return { secret, name, upstreamPath: null };
  if (parts[3] !== UPSTREAM_PATH_MARK) return null;
  return { secret, name, upstreamPath: '/' + parts.slice(4).join('/') };
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
 * a browser's `Origin` must be loopback (a page on another origin must not reach the token).
 */
export function checkAccess(h: { host: string | undefined; origin: string | undefined; port: number }): AccessDecision {
  const host = (h.host ?? '').toLowerCase();
  if (host !== `127.0.0.1:${h.port}` && host !== `localhost:${h.port}`) return { ok: false, status: 403, reason: 'host' };
  if (h.origin !== undefined && !isLoopbackOrigin(h.origin)) return { ok: false, status: 403, reason: 'origin' };
  return { ok: true };
}

export function isLoopbackOrigin(origin: string): boolean {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false; // "null" (sandboxed pages, file://) and garbage: not ours
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  const hn = u.hostname.toLowerCase();
  return hn === 'localhost' || hn === '127.0.0.1' || hn === '[::1]';
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
 * of 127.0.0.1), and what the body's framing or encoding decides (undici sets the length;
 * identity encoding keeps event streams unbuffered).
 */
const DROP_REQUEST = new Set(['host', 'authorization', 'cookie', 'origin', 'referer', 'content-length', 'accept-encoding', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);

/**
 * Response headers not passed back: hop-by-hop, `WWW-Authenticate` (it invites an OAuth
 * flow), cookies for a domain the client never talked to, and `Location` (redirects are
 * answered by the endpoint itself, see `upstreamAction`).
 */
const DROP_RESPONSE = new Set(['www-authenticate', 'set-cookie', 'location', 'alt-svc', 'strict-transport-security']);

function connectionListed(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Set<string> {
  const c = headers['connection'];
  const v = Array.isArray(c) ? c.join(',') : (c ?? '');
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
  for (const [k, v] of Object.entries(incoming)) {
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
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream)) {
    const name = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(name) || DROP_RESPONSE.has(name) || listed.has(name)) continue;
    out[name] = v;
  }
  if (isEventStream(upstream['content-type'])) {
    out['x-accel-buffering'] = 'no';
    out['cache-control'] = 'no-cache, no-transform';
    delete out['content-length'];
  }
  return out;
}

export function isEventStream(contentType: string | string[] | undefined): boolean {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  return typeof v === 'string' && v.toLowerCase().split(';')[0]?.trim() === 'text/event-stream';
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
