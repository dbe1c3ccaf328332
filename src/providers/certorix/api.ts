/**
 * The Certorix REST API client (contract: "The Certorix REST API"). It makes exactly one
 * HTTP request per call and classifies every outcome into ApiError; retrying is the
 * caller's business (src/api/retry.ts), because only the caller knows the journaled
 * Idempotency-Key that makes a retried regenerate safe. The bytes move through
 * src/api/request.ts (node:https), shared with the other providers' clients.
 */
import { RequestInvalid, RequestTimeout, type Answer } from '../../api/request.js';
import { ApiError, setTokenHint } from '../../errors.js';
import { Secret } from '../../secret.js';
import type { CallOptions, Provider, RegenerateResult, TokenInfo } from '../types.js';
import { validateApiUrl } from '../../api/url.js';
import { createApiSender, DEFAULT_TIMEOUT_MS, defaultUserAgent, describeNetworkError, errorCode, isSendableToken, isTlsCode, parseRetryAfter, scrub, serverDetail } from '../http.js';

// Shared with the other providers' clients; re-exported for the Certorix tests that pin them.
export { DEFAULT_TIMEOUT_MS, defaultUserAgent, isSendableToken, parseRetryAfter };

export interface CertorixProviderOptions {
  apiUrl: string;
  /** Bound on each call as a whole: connect, headers and body. Default 15000. */
  timeoutMs?: number;
  /** Must identify the MCP source for Certorix's audit log; " (MCP)" is appended when it does not. */
  userAgent?: string;
}

const MALFORMED_HINT =
  'Usually a proxy or an API incident; it is retried. If it persists, check "apiUrl" (or CERTORIX_API_URL) points at the Certorix API.';

const isIsoDate = (v: unknown): boolean => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v));

/**
 * Response shapes, checked by hand: three or four fields do not justify loading zod (90 ms
 * and 13 MiB) into every CLI call and the daemon. Returns the names of the bad fields.
 */
type FieldCheck = (v: unknown) => boolean;
const nonEmpty: FieldCheck = (v) => typeof v === 'string' && v.length > 0;
const optional = (f: FieldCheck): FieldCheck => (v) => v === undefined || v === null || f(v);
/** A minted token we could not send back later would be lost the moment we accepted it. */
const usableToken: FieldCheck = (v) => typeof v === 'string' && isSendableToken(v);

const TOKEN_INFO_FIELDS: Record<string, FieldCheck> = { id: nonEmpty, role: nonEmpty, email: optional((v) => typeof v === 'string'), created_at: optional(isIsoDate) };
const REGENERATE_FIELDS: Record<string, FieldCheck> = { token: usableToken, id: nonEmpty, created_at: optional(isIsoDate) };

export function badFields(body: unknown, fields: Record<string, FieldCheck>): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return ['(body)'];
  const o = body as Record<string, unknown>;
  return Object.entries(fields)
    .filter(([k, check]) => !check(o[k]))
    .map(([k]) => k);
}

type Op = 'inspect' | 'regenerate';

const OP = {
  inspect: { method: 'GET', path: '/v1/token', doing: 'checking' },
  regenerate: { method: 'POST', path: '/v1/token/regenerate', doing: 'regenerating' },
} as const;

export function createCertorixProvider(opts: CertorixProviderOptions): Provider {
  const base = validateApiUrl(opts.apiUrl);
  const { origin, timeoutMs, transport, send } = createApiSender(base, opts);

  async function call(op: Op, token: Secret, extraHeaders: Record<string, string>, callOpts: CallOptions | undefined): Promise<{ status: number; json: unknown }> {
    const { method, path, doing } = OP[op];
    const fp = token.fingerprint;
    const where = `${doing} token ${fp} (${method} ${path})`;
    const forToken = `${method} ${path} for token ${fp}`;
    const raw = token.reveal();
    if (!isSendableToken(raw)) {
      throw new ApiError('permanent', `Token ${fp} contains characters that cannot be sent in an HTTP header, so it cannot be a Certorix token.`, {
        hint: setTokenHint(fp),
      });
    }
    if (transport.closed) throw new ApiError('permanent', `The Certorix client was already closed when ${where} was attempted.`);

    const userSignal = callOpts?.signal;
    userSignal?.throwIfAborted();

    const transient = (reason: string, cause?: unknown): ApiError =>
      new ApiError('transient', `Could not finish ${where} at ${origin}: ${scrub(reason, raw)}.`, {
        hint:
          op === 'regenerate'
            ? 'Check the network connection and "apiUrl" (or CERTORIX_API_URL). Retries reuse the same Idempotency-Key, so the token is never regenerated twice.'
            : 'Check the network connection and "apiUrl" (or CERTORIX_API_URL), then run the command again.',
        cause,
      });

    let answer: Answer;
    try {
      answer = await send(raw, { method, path, signal: userSignal, headers: extraHeaders });
    } catch (e) {
      throw classifyThrown(e);
    }

    const { status, headers } = answer;
    if (status >= 200 && status < 300) {
      if (answer.truncated) return malformed(status, 'the body is larger than any API response');
      try {
        return { status, json: JSON.parse(answer.text) as unknown };
      } catch {
        return malformed(status, 'the body is not JSON');
      }
    }

    const detail = serverDetail(answer.text, raw);
    if (status === 401) {
      throw new ApiError('invalid-token', `Certorix rejected token ${fp} as invalid or revoked (401) while ${doing} it.`, {
        status,
        hint: setTokenHint(fp),
      });
    }
    if (status === 403) {
      throw new ApiError('forbidden', `Certorix refused ${forToken} (403 Forbidden)${detail}.`, {
        status,
        hint: `The token is valid but not allowed to do this. Check its account and role on the Certorix web UI (MCP / API page); if needed regenerate it there and pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\`.`,
      });
    }
    if (status === 422) {
      throw new ApiError('conflict', `Certorix refused ${forToken} (422)${detail}: the Idempotency-Key was already used with a different token.`, {
        status,
        hint: `Nothing was regenerated by this call. Run \`mcp-token-rotator status\` to see whether a rotation is pending, then \`mcp-token-rotator rotate --fingerprint ${fp}\`, which uses a fresh key.`,
      });
    }
    if (status === 429 || status === 408 || status >= 500) {
      const retryAfterMs = parseRetryAfter(headers['retry-after']);
      const label = status === 429 ? ' (rate limited)' : status === 408 ? ' (request timeout)' : '';
      const when = retryAfterMs === undefined ? '' : `; it asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
      throw new ApiError('transient', `The Certorix API answered ${status}${label} to ${forToken}${detail}${when}.`, {
        status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        hint:
          op === 'regenerate'
            ? 'It is retried with the same Idempotency-Key, so the token is never regenerated twice; if it keeps failing, try again later.'
            : 'Try again later; the daemon retries on its own.',
      });
    }
    throw new ApiError('permanent', `The Certorix API answered ${status} to ${forToken}${detail}.`, {
      status,
      hint: `Check "apiUrl" (now ${origin}) or CERTORIX_API_URL, and whether mcp-token-rotator needs an update for a changed API.`,
    });

    function malformed(status: number, why: string): never {
      throw new ApiError('transient', `The Certorix API sent an unexpected ${status} response while ${where}: ${why}.`, {
        status,
        hint: MALFORMED_HINT,
      });
    }

    function classifyThrown(e: unknown): unknown {
      if (userSignal?.aborted) return userSignal.reason ?? e;
      if (e instanceof RequestTimeout) return transient(`no complete answer within ${timeoutMs} ms`, e);
      if (transport.closed) return transient('the client was closed before the API answered', e);
      const code = errorCode(e);
      if (code && isTlsCode(code)) {
        return new ApiError(
          'permanent',
          `The TLS connection to ${origin} failed (${code}) while ${where}: the API must offer TLS 1.3 with a certificate this machine trusts.`,
          {
            hint: 'Check "apiUrl" (or CERTORIX_API_URL) and any proxy intercepting HTTPS; older TLS and untrusted certificates are refused on purpose.',
            cause: e,
          },
        );
      }
      if (e instanceof RequestInvalid) {
        return new ApiError('permanent', `The request for ${where} could not be built (${e.code}).`, {
          hint: 'This is a bug in mcp-token-rotator; please report it.',
          cause: e,
        });
      }
      // Resets, refusals, DNS failures, parser errors, odd socket states: all worth another try.
      return transient(`${describeNetworkError(e)}${code ? ` (${code})` : ''}`, e);
    }
  }

  return {
    name: 'certorix',

    async inspect(token, callOpts) {
      const res = await call('inspect', token, {}, callOpts);
      const bad = badFields(res.json, TOKEN_INFO_FIELDS);
      if (bad.length) throw badShape(res.status, 'checking', token, bad);
      const d = res.json as { id: string; role: string; email?: string | null; created_at?: string | null };
      const info: TokenInfo = { id: d.id, role: d.role };
      if (d.email != null) info.email = d.email;
      if (d.created_at != null) info.createdAt = new Date(d.created_at).toISOString();
      return info;
    },

    async regenerate(token, idempotencyKey, callOpts) {
      if (idempotencyKey === '' || /[^\x21-\x7e]/.test(idempotencyKey) || idempotencyKey.length > 255) {
        throw new ApiError('permanent', `Refusing to regenerate token ${token.fingerprint}: the Idempotency-Key must be 1-255 visible ASCII characters.`, {
          hint: 'This is a bug in mcp-token-rotator; please report it.',
        });
      }
      const res = await call('regenerate', token, { 'idempotency-key': idempotencyKey }, callOpts);
      const minted = (res.json as { token?: unknown } | null)?.token;
      if (typeof minted === 'string' && minted !== '' && (!isSendableToken(minted) || minted.includes('${'))) {
        // The server did regenerate (the old token is dead), but this value can be neither sent
        // back nor written into a config; every replay returns it again, so retrying is futile.
        throw new ApiError('permanent', `The Certorix API issued a new token for ${token.fingerprint} that cannot be used (it holds characters no config or header can carry); the old token is likely revoked.`, {
          status: res.status,
          hint: setTokenHint(token.fingerprint),
        });
      }
      const bad = badFields(res.json, REGENERATE_FIELDS);
      if (bad.length) throw badShape(res.status, 'regenerating', token, bad);
      const d = res.json as { token: string; id: string; created_at?: string | null };
      const out: RegenerateResult = { token: new Secret(d.token), id: d.id };
      if (d.created_at != null) out.createdAt = new Date(d.created_at).toISOString();
      return out;
    },

    close: () => transport.close(),
  };

  function badShape(status: number, doing: string, token: Secret, bad: string[]): ApiError {
    // Field names only: values could echo a token from the body.
    const fields = bad.join(', ');
    return new ApiError(
      'transient',
      `The Certorix API sent an unexpected ${status} response while ${doing} token ${token.fingerprint}: missing or invalid field(s) ${fields}.`,
      {
        status,
        hint: MALFORMED_HINT,
      },
    );
  }
}
