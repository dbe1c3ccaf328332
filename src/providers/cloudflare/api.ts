/**
 * The Cloudflare user API token client (API v4, envelope `{success, errors, messages,
 * result}`): `GET /user/tokens/verify` to inspect (id, status, expires_on), `PUT
 * /user/tokens/{id}/value` with `{}` to roll the secret (id and permissions stay, the old
 * value dies). Rolling needs the token's "API Tokens Write" permission. No idempotency key:
 * `regenerate` makes one PUT, never retried here, and the engine never repeats it after an
 * answer was lost ('rotate-no-idempotency').
 */
import { ApiError } from '../../errors.js';
import { Secret } from '../../secret.js';
import { asNotSent, createHttpClient, isSendableToken, type HttpRequest } from '../http.js';
import { CLOUDFLARE_TOKEN_PAGE } from './index.js';
import type { ClientOptions, ProviderClient, RegenerateOptions, RegenerateResult, TokenInfo } from '../types.js';

const VERIFY = '/user/tokens/verify';

export function cloudflareSetTokenHint(fp: string): string {
  return `Roll or create the token at ${CLOUDFLARE_TOKEN_PAGE}, then pipe the new value to \`mcp-token-rotator set-token --fingerprint ${fp}\` (it reads the new token from stdin).`;
}

interface VerifyResult {
  id: string;
  status: string;
  expires_on?: string | null;
}

/** Checks the envelope and the verify result; returns the bad field names (never values). */
export function badVerifyFields(body: unknown): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return ['(body)'];
  const o = body as Record<string, unknown>;
  if (o.success !== true) return ['success'];
  const r = o.result as Record<string, unknown> | null | undefined;
  if (r === null || typeof r !== 'object') return ['result'];
  const bad: string[] = [];
  if (typeof r.id !== 'string' || !/^[A-Za-z0-9]{1,64}$/.test(r.id)) bad.push('result.id');
  if (typeof r.status !== 'string') bad.push('result.status');
  if (!(r.expires_on === undefined || r.expires_on === null || (typeof r.expires_on === 'string' && !Number.isNaN(Date.parse(r.expires_on))))) bad.push('result.expires_on');
  return bad;
}

export function createCloudflareClient(opts: ClientOptions): ProviderClient {
  const http = createHttpClient({
    label: 'Cloudflare',
    apiUrl: opts.apiUrl,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.userAgent !== undefined ? { userAgent: opts.userAgent } : {}),
    urlHint: '"apiUrls.cloudflare" in the settings (or CLOUDFLARE_API_URL)',
    tokenPage: CLOUDFLARE_TOKEN_PAGE,
  });

  const refuse =
    (fp: string, doing: string): HttpRequest['refuse'] =>
    (status, json, detail) => {
      const code = firstErrorCode(json);
      // 401 code 1000 "Invalid API Token"; 400 code 6003/6111: the value is not a token at all (a Global API Key?).
      if (status === 401 || (status === 400 && code === 6003)) {
        return new ApiError('invalid-token', `Cloudflare rejected token ${fp} as invalid or rolled (${status}) while ${doing} it${detail}.`, {
          status,
          hint: cloudflareSetTokenHint(fp),
        });
      }
      if (status === 403) {
        if (doing === 'rolling') {
          return new ApiError('forbidden', `Cloudflare refused to roll token ${fp} (403)${detail}: rolling needs the token's "API Tokens Write" permission.`, {
            status,
            hint: `Edit the token at ${CLOUDFLARE_TOKEN_PAGE} and add the permission User > API Tokens > Edit ("API Tokens Write"), then run \`mcp-token-rotator rotate --fingerprint ${fp}\` again.`,
          });
        }
        return new ApiError('forbidden', `Cloudflare refused ${doing} token ${fp} (403)${detail}.`, {
          status,
          hint: `An account-owned token cannot use /user/tokens/verify; check the token at ${CLOUDFLARE_TOKEN_PAGE}.`,
        });
      }
      return undefined;
    };

  const verify = async (token: Secret, signal?: AbortSignal): Promise<VerifyResult> => {
    const req: HttpRequest = { method: 'GET', path: VERIFY, doing: 'checking', refuse: refuse(token.fingerprint, 'checking') };
    const res = await http.call(token, req, signal ? { signal } : undefined);
    const bad = badVerifyFields(res.json);
    if (bad.length) throw http.badShape(res, req, token, bad);
    const r = (res.json as { result: VerifyResult }).result;
    if (r.status !== 'active') {
      throw new ApiError('invalid-token', `Cloudflare says token ${token.fingerprint} is ${r.status}.`, { status: res.status, hint: cloudflareSetTokenHint(token.fingerprint) });
    }
    return r;
  };

  return {
    name: 'cloudflare',

    async inspect(token, callOpts) {
      const r = await verify(token, callOpts?.signal);
      // Cloudflare tells no creation date, so age stays unknown (contract).
      const info: TokenInfo = { id: r.id, role: '', expiresAt: r.expires_on ? new Date(r.expires_on).toISOString() : null };
      return info;
    },

    async regenerate(token: Secret, _idempotencyKey: string, callOpts?: RegenerateOptions): Promise<RegenerateResult> {
      // The roll names the token by id; verify (harmless) says which id this value has.
      const r = await verify(token, callOpts?.signal).catch((e: unknown) => {
        throw asNotSent(e);
      });
      const res = await http.call(
        token,
        {
          method: 'PUT',
          path: `/user/tokens/${encodeURIComponent(r.id)}/value`,
          doing: 'rolling',
          body: {},
          refuse: refuse(token.fingerprint, 'rolling'),
          transientHint: `Cloudflare has no idempotency key, so this roll is not repeated: if Cloudflare acted, the old value is dead and only Cloudflare showed the new one. Check ${CLOUDFLARE_TOKEN_PAGE}; if needed roll the token there and pipe the new value to \`mcp-token-rotator set-token --fingerprint ${token.fingerprint}\`.`,
        },
        callOpts?.signal ? { signal: callOpts.signal } : undefined,
      );
      const body = res.json as { success?: unknown; result?: unknown } | null;
      const minted = body?.result;
      if (body?.success !== true || typeof minted !== 'string' || !isSendableToken(minted) || minted.includes('${')) {
        throw new ApiError('permanent', `Cloudflare answered ${res.status} to the roll of token ${token.fingerprint} without a usable new value; the old value is likely dead.`, {
          status: res.status,
          hint: cloudflareSetTokenHint(token.fingerprint),
        });
      }
      const out: RegenerateResult = { token: new Secret(minted), id: r.id, expiresAt: r.expires_on ? new Date(r.expires_on).toISOString() : null };
      return out;
    },

    close: () => http.close(),
  };
}

function firstErrorCode(json: unknown): number | undefined {
  const errs = (json as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errs) || errs.length === 0) return undefined;
  const c = (errs[0] as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}
