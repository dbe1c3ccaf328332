/**
 * A fake Cloudflare user API token API on loopback, in Cloudflare's v4 envelope
 * `{success, errors: [{code, message}], messages: [...], result}`:
 * - `GET /user/tokens/verify` -> 200 `{result: {id, status: "active" | "disabled" | "expired",
 *   expires_on?, not_before?}}` with message 10000 "This API Token is valid and active";
 *   an unknown or rolled token -> 401 with error 1000 "Invalid API Token".
 * - `PUT /user/tokens/{id}/value` (body `{}`) -> 200 `{result: "<new token>"}`: the secret of
 *   token `id` is rolled, the old value dies at once, id and permissions stay. The caller's
 *   token needs the "API Tokens Write" permission, else 403 with error 10000 "Authentication
 *   error" (what Cloudflare answers a token without the permission); a token may roll only
 *   tokens of its own user (else 404; the product only ever rolls the token it authenticates
 *   with). The rolled value is 40 characters (Cloudflare: 40 to 80).
 * - A token past `expires_on` verifies as status "expired" and is refused elsewhere (401).
 * Knobs (fault, delayMs) and the request log come from http-fake.ts.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { startHttpFake, jsonReply, fingerprint, type HttpFake, type Reply } from './http-fake.js';

export type { Fault, RecordedRequest } from './http-fake.js';

export interface FakeCloudflareToken {
  token: string;
  /** 32 hex characters, as Cloudflare's token identifiers. */
  id: string;
  status: 'active' | 'disabled';
  /** ISO 8601 (`2027-01-01T00:00:00Z`), or undefined for a token that never expires. */
  expiresOn?: string;
  notBefore?: string;
  /** Whether the token has "API Tokens Write" (needed to roll). */
  canWriteTokens: boolean;
  userId: string;
  /** False once rolled: the value is dead, the id lives on under the new value. */
  live: boolean;
}

export interface AddCloudflareToken {
  token?: string;
  expiresOn?: string;
  expiresInDays?: number;
  notBefore?: string;
  canWriteTokens?: boolean;
  status?: 'active' | 'disabled';
  userId?: string;
}

export interface FakeCloudflare extends HttpFake {
  addToken(opts?: AddCloudflareToken): string;
  get(token: string): FakeCloudflareToken | undefined;
  isLive(token: string): boolean;
  /** Rolling or deleting in the dashboard: the value dies. */
  revoke(token: string): void;
  setPermission(token: string, canWriteTokens: boolean): void;
  all(): FakeCloudflareToken[];
  rollCount: number;
  rollCalls(): number;
  tokenFactory: () => string;
  now: () => Date;
}

export const CLOUDFLARE_PREFIX = '/client/v4';
export const CLOUDFLARE_VERIFY_PATH = `${CLOUDFLARE_PREFIX}/user/tokens/verify`;
export const cloudflareRollPath = (id: string): string => `${CLOUDFLARE_PREFIX}/user/tokens/${id}/value`;

const DAY_MS = 86_400_000;
const CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

export function defaultCloudflareToken(): string {
  let s = '';
  for (let i = 0; i < 40; i++) s += CHARS[randomInt(CHARS.length)];
  return s;
}

type CfError = { code: number; message: string };
const envelope = (status: number, result: unknown, errors: CfError[] = [], messages: Array<CfError & { type: null }> = []): Reply =>
  jsonReply(status, { success: errors.length === 0, errors, messages, result });
const failure = (status: number, code: number, message: string): Reply => envelope(status, null, [{ code, message }]);

const STATUS_TEXT: Record<number, [number, string]> = {
  429: [971, 'Please wait and consider throttling your request speed'],
  500: [10001, 'Internal server error'],
  502: [10002, 'Bad gateway'],
  503: [10003, 'Service unavailable'],
};

export async function startFakeCloudflare(opts: { port?: number; host?: string } = {}): Promise<FakeCloudflare> {
  const tokens = new Map<string, FakeCloudflareToken>();
  const newId = (): string => randomBytes(16).toString('hex');
  const expiredNow = (t: FakeCloudflareToken): boolean => t.expiresOn !== undefined && api.now().getTime() >= Date.parse(t.expiresOn);
  const invalid = failure(401, 1000, 'Invalid API Token');

  const base = await startHttpFake({
    name: 'cloudflare',
    prefix: CLOUDFLARE_PREFIX,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    notFound: () => failure(404, 7000, 'No route for that URI'),
    malformed: () => ({ status: 200, body: '<html><head><title>Attention Required! | Cloudflare</title></head></html>' }),
    faultBody: (status) => {
      const [code, message] = STATUS_TEXT[status] ?? [10000, `HTTP ${status}`];
      return JSON.stringify({ success: false, errors: [{ code, message }], messages: [], result: null });
    },
    act: ({ req, method, path, credential, body }) => {
      const caller = credential === undefined ? undefined : tokens.get(credential);
      if (path === '/user/tokens/verify') {
        if (method !== 'GET') return failure(405, 10405, 'Method not allowed');
        if (!caller || !caller.live) return invalid;
        const status = expiredNow(caller) ? 'expired' : caller.status;
        const result: Record<string, unknown> = { id: caller.id, status };
        if (caller.expiresOn !== undefined) result.expires_on = caller.expiresOn;
        if (caller.notBefore !== undefined) result.not_before = caller.notBefore;
        return envelope(200, result, [], status === 'active' ? [{ code: 10000, message: 'This API Token is valid and active', type: null }] : []);
      }
      const roll = /^\/user\/tokens\/([^/]+)\/value$/.exec(path);
      if (roll) {
        if (method !== 'PUT') return failure(405, 10405, 'Method not allowed');
        if (!caller || !caller.live || caller.status !== 'active' || expiredNow(caller)) return invalid;
        if (!(req.headers['content-type'] ?? '').includes('application/json')) return failure(400, 6003, 'Invalid request headers');
        try {
          JSON.parse(body);
        } catch {
          return failure(400, 6007, 'Malformed JSON in request body');
        }
        if (!caller.canWriteTokens) return failure(403, 10000, 'Authentication error');
        const target = [...tokens.values()].find((t) => t.live && t.id === roll[1]);
        if (!target || target.userId !== caller.userId) return failure(404, 1003, 'Invalid token id');
        target.live = false;
        const fresh: FakeCloudflareToken = { ...target, token: uniqueToken(), live: true };
        tokens.set(fresh.token, fresh);
        api.rollCount++;
        return envelope(200, fresh.token);
      }
      return failure(404, 7000, 'No route for that URI');
    },
  });

  const uniqueToken = (): string => {
    for (let i = 0; i < 100; i++) {
      const t = api.tokenFactory();
      if (!tokens.has(t)) return t;
    }
    throw new Error('fake cloudflare: tokenFactory keeps returning tokens that already exist');
  };

  const api: FakeCloudflare = Object.assign(base, {
    rollCount: 0,
    tokenFactory: defaultCloudflareToken,
    now: () => new Date(),
    rollCalls: () => base.requests.filter((r) => r.method === 'PUT' && /\/user\/tokens\/[^/]+\/value$/.test(r.path)).length,
    addToken(o: AddCloudflareToken = {}) {
      const token = o.token ?? uniqueToken();
      if (tokens.has(token)) throw new Error('fake cloudflare: that token already exists');
      const expiresOn =
        o.expiresInDays !== undefined ? new Date(api.now().getTime() + o.expiresInDays * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z') : o.expiresOn;
      tokens.set(token, {
        token,
        id: newId(),
        status: o.status ?? 'active',
        ...(expiresOn !== undefined ? { expiresOn } : {}),
        ...(o.notBefore !== undefined ? { notBefore: o.notBefore } : {}),
        canWriteTokens: o.canWriteTokens ?? true,
        userId: o.userId ?? 'user-1',
        live: true,
      });
      return token;
    },
    get(token: string) {
      const t = tokens.get(token);
      return t ? { ...t } : undefined;
    },
    isLive(token: string) {
      const t = tokens.get(token);
      return t !== undefined && t.live && t.status === 'active' && !expiredNow(t);
    },
    revoke(token: string) {
      const t = tokens.get(token);
      if (t) t.live = false;
    },
    setPermission(token: string, canWriteTokens: boolean) {
      const t = tokens.get(token);
      if (t) t.canWriteTokens = canWriteTokens;
    },
    all() {
      return [...tokens.values()].map((t) => ({ ...t }));
    },
  });
  return api;
}

export { fingerprint };
