/**
 * A fake GitLab personal access token API on loopback, in GitLab's own shapes (API v4):
 * - `GET /personal_access_tokens/self` -> 200 `{id, name, revoked, created_at, description,
 *   scopes, user_id, last_used_at, active, expires_at}` (`expires_at` a date, `YYYY-MM-DD`, or null).
 * - `POST /personal_access_tokens/self/rotate` (optional `expires_at`, JSON or form body) ->
 *   200 the same plus `token`; the old token is revoked at once. Needs scope `api` or
 *   `self_rotate`, else 403 `{"error":"insufficient_scope", ..., "scope":"api self_rotate"}`.
 *   Without `expires_at` GitLab gives the new token one week; more than 365 days ahead is a 400.
 * - Automatic reuse detection (GitLab MR 125270, limited to the rotate endpoints by MR 126806,
 *   seen in issue 524639): a rotate sent with an already rotated (revoked) token revokes the
 *   newest token of its family and answers 401. This is why a lost rotate answer must never
 *   be retried.
 * - 401 bodies: unknown token `{"message":"401 Unauthorized"}`; revoked `{"error":"invalid_token",
 *   "error_description":"Token was revoked. You have to re-authenticate."}`; expired the same
 *   with "Token has expired.". A token expires at 00:00 UTC of its `expires_at` date.
 * The credential is read from `PRIVATE-TOKEN` or `Authorization: Bearer`, as GitLab does.
 * Knobs (fault, delayMs) and the request log come from http-fake.ts.
 */
import { randomInt } from 'node:crypto';
import { startHttpFake, jsonReply, fingerprint, type HttpFake, type Reply } from './http-fake.js';

export type { Fault, RecordedRequest } from './http-fake.js';

export interface FakeGitlabToken {
  token: string;
  id: number;
  name: string;
  scopes: string[];
  createdAt: string;
  /** `YYYY-MM-DD`, or null for a token that never expires. */
  expiresAt: string | null;
  revoked: boolean;
  userId: number;
  /** The token this one was rotated into, if it was. */
  rotatedTo?: string;
}

export interface AddGitlabToken {
  token?: string;
  name?: string;
  scopes?: string[];
  /** Default: now - ageDays. */
  createdAt?: string;
  ageDays?: number;
  /** `YYYY-MM-DD` or null (never). Default: created_at + 365 days, GitLab's maximum. */
  expiresAt?: string | null;
  /** Days from now, instead of `expiresAt`. */
  expiresInDays?: number;
  userId?: number;
}

export interface FakeGitlab extends HttpFake {
  addToken(opts?: AddGitlabToken): string;
  get(token: string): FakeGitlabToken | undefined;
  isActive(token: string): boolean;
  /** What "Revoke" in the web UI does. */
  revoke(token: string): void;
  setScopes(token: string, scopes: string[]): void;
  all(): FakeGitlabToken[];
  /** Successful rotations (a rotate whose answer was then lost counts too). */
  rotateCount: number;
  /** Rotate requests of any outcome. */
  rotateCalls(): number;
  tokenFactory: () => string;
  now: () => Date;
}

export const GITLAB_PREFIX = '/api/v4';
export const GITLAB_SELF_PATH = `${GITLAB_PREFIX}/personal_access_tokens/self`;
export const GITLAB_ROTATE_PATH = `${GITLAB_PREFIX}/personal_access_tokens/self/rotate`;

const DAY_MS = 86_400_000;
const MAX_LIFETIME_DAYS = 365;
const DEFAULT_ROTATE_DAYS = 7;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

export function defaultGitlabToken(): string {
  let s = 'glpat-';
  for (let i = 0; i < 20; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

const dateOnly = (d: Date): string => d.toISOString().slice(0, 10);
const STATUS_TEXT: Record<number, string> = {
  400: '400 Bad request',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  429: 'Retry later',
  500: '500 Internal Server Error',
  502: '502 Bad Gateway',
  503: '503 Service Unavailable',
};

export async function startFakeGitlab(opts: { port?: number; host?: string } = {}): Promise<FakeGitlab> {
  const tokens = new Map<string, FakeGitlabToken>();
  let idCounter = 1000;

  const expired = (t: FakeGitlabToken): boolean => t.expiresAt !== null && api.now().getTime() >= Date.parse(`${t.expiresAt}T00:00:00Z`);
  const view = (t: FakeGitlabToken): Record<string, unknown> => ({
    id: t.id,
    name: t.name,
    revoked: t.revoked,
    created_at: t.createdAt,
    description: null,
    scopes: [...t.scopes],
    user_id: t.userId,
    last_used_at: api.now().toISOString(),
    active: !t.revoked && !expired(t),
    expires_at: t.expiresAt,
  });

  const unauthorized: Reply = jsonReply(401, { message: '401 Unauthorized' });
  const invalidToken = (why: string): Reply => ({
    ...jsonReply(401, { error: 'invalid_token', error_description: why }),
    headers: { 'www-authenticate': `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="${why}"` },
  });
  const REVOKED = 'Token was revoked. You have to re-authenticate.';
  const EXPIRED = 'Token has expired.';

  /** The newest token of `t`'s rotation family (itself when it was never rotated). */
  const newestOf = (t: FakeGitlabToken): FakeGitlabToken => {
    let cur = t;
    for (let i = 0; cur.rotatedTo !== undefined && i < 10_000; i++) cur = tokens.get(cur.rotatedTo)!;
    return cur;
  };

  const parseExpiresAt = (body: string, contentType: string | undefined): string | undefined | Error => {
    if (body.trim() === '') return undefined;
    let v: unknown;
    if ((contentType ?? '').includes('json')) {
      try {
        v = (JSON.parse(body) as Record<string, unknown>).expires_at;
      } catch {
        return new Error('400 Bad request - body is not valid JSON');
      }
    } else {
      v = new URLSearchParams(body).get('expires_at') ?? undefined;
    }
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`))) return new Error('400 Bad request - expires_at is invalid');
    return v;
  };

  const base = await startHttpFake({
    name: 'gitlab',
    prefix: GITLAB_PREFIX,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    notFound: () => jsonReply(404, { error: '404 Not Found' }),
    malformed: () => ({ status: 200, body: '<html><body>502 Whoops, GitLab is taking too much time to respond.</body></html>' }),
    faultBody: (status) => JSON.stringify({ message: STATUS_TEXT[status] ?? `${status}` }),
    act: ({ req, method, path, credential, body }) => {
      if (path === '/personal_access_tokens/self') {
        if (method !== 'GET') return jsonReply(405, { error: '405 Method Not Allowed' });
        const t = credential === undefined ? undefined : tokens.get(credential);
        if (!t) return unauthorized;
        if (t.revoked) return invalidToken(REVOKED);
        if (expired(t)) return invalidToken(EXPIRED);
        return jsonReply(200, view(t));
      }
      if (path === '/personal_access_tokens/self/rotate') {
        if (method !== 'POST') return jsonReply(405, { error: '405 Method Not Allowed' });
        const t = credential === undefined ? undefined : tokens.get(credential);
        if (!t) return unauthorized;
        if (t.revoked) {
          // Reuse detection: the family's live token dies too, and nothing new is made.
          const newest = newestOf(t);
          if (newest !== t) newest.revoked = true;
          return invalidToken(REVOKED);
        }
        if (expired(t)) return invalidToken(EXPIRED);
        if (!t.scopes.includes('api') && !t.scopes.includes('self_rotate')) {
          return jsonReply(403, {
            error: 'insufficient_scope',
            error_description: 'The request requires higher privileges than provided by the access token.',
            scope: 'api self_rotate',
          });
        }
        const parsed = parseExpiresAt(body, req.headers['content-type']);
        if (parsed instanceof Error) return jsonReply(400, { error: parsed.message });
        const today = Date.parse(`${dateOnly(api.now())}T00:00:00Z`);
        const expiresAt = parsed ?? dateOnly(new Date(today + DEFAULT_ROTATE_DAYS * DAY_MS));
        const at = Date.parse(`${expiresAt}T00:00:00Z`);
        if (at <= today) return jsonReply(400, { message: { expires_at: ['must be in the future'] } });
        if (at > today + MAX_LIFETIME_DAYS * DAY_MS) {
          return jsonReply(400, { message: `400 Bad request - Expiration date must be on or before ${dateOnly(new Date(today + MAX_LIFETIME_DAYS * DAY_MS))}` });
        }
        t.revoked = true;
        const fresh: FakeGitlabToken = {
          token: uniqueToken(),
          id: ++idCounter,
          name: t.name,
          scopes: [...t.scopes],
          createdAt: api.now().toISOString(),
          expiresAt,
          revoked: false,
          userId: t.userId,
        };
        t.rotatedTo = fresh.token;
        tokens.set(fresh.token, fresh);
        api.rotateCount++;
        return jsonReply(200, { ...view(fresh), token: fresh.token });
      }
      return jsonReply(404, { error: '404 Not Found' });
    },
  });

  const uniqueToken = (): string => {
    for (let i = 0; i < 100; i++) {
      const t = api.tokenFactory();
      if (!tokens.has(t)) return t;
    }
    throw new Error('fake gitlab: tokenFactory keeps returning tokens that already exist');
  };

  const api: FakeGitlab = Object.assign(base, {
    rotateCount: 0,
    tokenFactory: defaultGitlabToken,
    now: () => new Date(),
    rotateCalls: () => base.requests.filter((r) => r.method === 'POST' && r.path === GITLAB_ROTATE_PATH).length,
    addToken(o: AddGitlabToken = {}) {
      const token = o.token ?? uniqueToken();
      if (tokens.has(token)) throw new Error('fake gitlab: that token already exists');
      const createdAt = o.createdAt ?? new Date(api.now().getTime() - Math.round((o.ageDays ?? 0) * DAY_MS)).toISOString();
      const expiresAt =
        o.expiresInDays !== undefined
          ? dateOnly(new Date(api.now().getTime() + o.expiresInDays * DAY_MS))
          : o.expiresAt !== undefined
            ? o.expiresAt
            : dateOnly(new Date(Date.parse(createdAt) + MAX_LIFETIME_DAYS * DAY_MS));
      tokens.set(token, {
        token,
        id: ++idCounter,
        name: o.name ?? 'mcp',
        scopes: o.scopes ?? ['api'],
        createdAt,
        expiresAt,
        revoked: false,
        userId: o.userId ?? 42,
      });
      return token;
    },
    get(token: string) {
      const t = tokens.get(token);
      return t ? { ...t, scopes: [...t.scopes] } : undefined;
    },
    isActive(token: string) {
      const t = tokens.get(token);
      return t !== undefined && !t.revoked && !expired(t);
    },
    revoke(token: string) {
      const t = tokens.get(token);
      if (t) t.revoked = true;
    },
    setScopes(token: string, scopes: string[]) {
      const t = tokens.get(token);
      if (t) t.scopes = [...scopes];
    },
    all() {
      return [...tokens.values()].map((t) => ({ ...t, scopes: [...t.scopes] }));
    },
  });
  return api;
}

export { fingerprint };
