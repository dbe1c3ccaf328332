/**
 * The GitLab personal access token client (API v4): `GET /personal_access_tokens/self` to
 * inspect, `POST /personal_access_tokens/self/rotate` to rotate, keeping the lifetime
 * (lifetime.ts). The token travels as `Authorization: Bearer` (GitLab takes a personal
 * access token there) to the entry's own GITLAB_API_URL or gitlab.com, never elsewhere
 * (http.ts checks the base: https, or http on loopback).
 *
 * GitLab has no idempotency key, and a rotate sent again with the old (already revoked)
 * token makes GitLab revoke the new one (reuse detection, GitLab issue 524639). So
 * `regenerate` makes exactly one POST, never retried here, and the engine never repeats it
 * after an answer was lost ('rotate-no-idempotency').
 */
import { ApiError } from '../../errors.js';
import { Secret } from '../../secret.js';
import { asNotSent, createHttpClient, isSendableToken, type HttpRequest } from '../http.js';
import type { ClientOptions, ProviderClient, RegenerateOptions, RegenerateResult, TokenInfo } from '../types.js';
import { gitlabRotateExpiry } from './lifetime.js';
import { gitlabTokenPage } from './index.js';

const SELF = '/personal_access_tokens/self';
const ROTATE = '/personal_access_tokens/self/rotate';
export const GITLAB_ROTATE_SCOPES = ['api', 'self_rotate'] as const;

export function gitlabSetTokenHint(fp: string, page: string): string {
  return `Create a new token at ${page}, then pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\` (it reads the new token from stdin).`;
}

const isIso = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isDate = (v: unknown): v is string => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}/.test(v) && !Number.isNaN(Date.parse(v.slice(0, 10)));

interface PatView {
  id: number | string;
  name?: string;
  revoked: boolean;
  active: boolean;
  created_at: string;
  scopes: string[];
  expires_at: string | null;
  token?: unknown;
}

/** The fields the product relies on; returns the names of bad ones (never values). */
export function badPatFields(body: unknown): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return ['(body)'];
  const o = body as Record<string, unknown>;
  const bad: string[] = [];
  if (!(typeof o.id === 'number' || (typeof o.id === 'string' && o.id !== ''))) bad.push('id');
  if (typeof o.revoked !== 'boolean') bad.push('revoked');
  if (typeof o.active !== 'boolean') bad.push('active');
  if (!isIso(o.created_at)) bad.push('created_at');
  if (!Array.isArray(o.scopes) || !o.scopes.every((s) => typeof s === 'string')) bad.push('scopes');
  if (!(o.expires_at === null || o.expires_at === undefined || isDate(o.expires_at))) bad.push('expires_at');
  return bad;
}

/** GitLab's date-only expiry as the ISO instant the token dies (00:00 UTC that day). */
export function gitlabExpiryIso(expiresAt: string | null | undefined): string | null {
  if (expiresAt === null || expiresAt === undefined) return null;
  return new Date(`${expiresAt.slice(0, 10)}T00:00:00Z`).toISOString();
}

export function createGitLabClient(opts: ClientOptions): ProviderClient {
  const page = gitlabTokenPage(opts.apiUrl);
  const http = createHttpClient({
    label: 'GitLab',
    apiUrl: opts.apiUrl,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.userAgent !== undefined ? { userAgent: opts.userAgent } : {}),
    urlHint: "GITLAB_API_URL in the entry's env (https://HOST/api/v4)",
    tokenPage: page,
  });

  const refuse =
    (fp: string, doing: string): HttpRequest['refuse'] =>
    (status, json, detail) => {
      if (status === 401) {
        return new ApiError('invalid-token', `GitLab rejected token ${fp} as invalid, revoked or expired (401) while ${doing} it${detail}.`, {
          status,
          hint: gitlabSetTokenHint(fp, page),
        });
      }
      if (status === 403) {
        const insufficient = (json as { error?: unknown } | null)?.error === 'insufficient_scope';
        if (insufficient && doing === 'rotating') {
          return new ApiError('forbidden', `GitLab refused to rotate token ${fp} (403 insufficient_scope): a token can rotate itself only with the \`api\` or \`self_rotate\` scope.`, {
            status,
            hint: `GitLab cannot add a scope to an existing token: create one with the same scopes plus \`self_rotate\` at ${page} and pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\`; later rotations then work.`,
          });
        }
        return new ApiError('forbidden', `GitLab refused ${doing} token ${fp} (403)${detail}.`, {
          status,
          hint: `The token is valid but not allowed to do this; check its scopes at ${page}.`,
        });
      }
      return undefined;
    };

  const get = async (token: Secret, signal?: AbortSignal): Promise<PatView> => {
    const req: HttpRequest = { method: 'GET', path: SELF, doing: 'checking', refuse: refuse(token.fingerprint, 'checking') };
    const res = await http.call(token, req, signal ? { signal } : undefined);
    const bad = badPatFields(res.json);
    if (bad.length) throw http.badShape(res, req, token, bad);
    const v = res.json as PatView;
    if (v.revoked || !v.active) {
      throw new ApiError('invalid-token', `GitLab says token ${token.fingerprint} is ${v.revoked ? 'revoked' : 'not active (expired)'}.`, {
        status: res.status,
        hint: gitlabSetTokenHint(token.fingerprint, page),
      });
    }
    return v;
  };

  return {
    name: 'gitlab',

    async inspect(token, callOpts) {
      const v = await get(token, callOpts?.signal);
      const info: TokenInfo = {
        id: String(v.id),
        role: v.scopes.join(', '),
        createdAt: new Date(v.created_at).toISOString(),
        expiresAt: gitlabExpiryIso(v.expires_at),
        scopes: [...v.scopes],
      };
      if (typeof v.name === 'string' && v.name !== '') info.tokenKind = `personal access token "${v.name.slice(0, 60)}"`;
      return info;
    },

    async regenerate(token: Secret, _idempotencyKey: string, callOpts?: RegenerateOptions): Promise<RegenerateResult> {
      // The lifetime needs the old token's dates; ask (a GET is harmless) unless they were
      // recorded from GitLab. GitLab always tells created_at, so a record without it was never
      // inspected, and its null expiry means "unknown", not "never": rotating on it would
      // send no expires_at and GitLab would give the new token one week.
      let previous = callOpts?.previous;
      if (!previous?.createdAt || previous.expiresAt === undefined) {
        const v = await get(token, callOpts?.signal).catch((e: unknown) => {
          throw asNotSent(e);
        });
        previous = { createdAt: v.created_at, expiresAt: v.expires_at };
      }
      const expiresAt = gitlabRotateExpiry(previous, callOpts?.now ?? new Date());
      const res = await http.call(
        token,
        {
          method: 'POST',
          path: ROTATE,
          doing: 'rotating',
          body: expiresAt === undefined ? {} : { expires_at: expiresAt },
          refuse: refuse(token.fingerprint, 'rotating'),
          transientHint: `GitLab has no idempotency key, so this rotation is not repeated: if GitLab acted, the old token is dead and only GitLab knows the new one. Check ${page}; if needed create a new token there and pipe it to \`mcp-token-rotator set-token --fingerprint ${token.fingerprint}\`.`,
        },
        callOpts?.signal ? { signal: callOpts.signal } : undefined,
      );
      const minted = (res.json as { token?: unknown } | null)?.token;
      if (typeof minted !== 'string' || !isSendableToken(minted) || minted.includes('${')) {
        // GitLab acted (2xx): the old token is revoked, and the new value is unusable or absent.
        throw new ApiError('permanent', `GitLab rotated token ${token.fingerprint} but sent ${minted === undefined ? 'no new token' : 'a new token no config or header can carry'}; the old token is revoked.`, {
          status: res.status,
          hint: gitlabSetTokenHint(token.fingerprint, page),
        });
      }
      const bad = badPatFields(res.json);
      const v = res.json as PatView;
      const out: RegenerateResult = { token: new Secret(minted), id: bad.includes('id') ? '' : String(v.id) };
      if (!bad.includes('created_at')) out.createdAt = new Date(v.created_at).toISOString();
      if (!bad.includes('expires_at')) out.expiresAt = gitlabExpiryIso(v.expires_at);
      return out;
    },

    close: () => http.close(),
  };
}
