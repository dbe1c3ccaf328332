/**
 * The HTTP plumbing every provider client shares: one request per call, the answer read
 * with a size cap, and every outcome classified into ApiError (401 invalid-token, 403
 * forbidden, 408/429/5xx and network failures transient, anything else permanent), with
 * the provider's own words in messages. Retrying is the caller's business (src/api/retry.ts);
 * `ApiError.notSent` tells it a request surely never reached the server, the one case where
 * even a call without idempotency may be sent again.
 *
 * The bytes move through src/api/request.ts (node:https, one exchange per call). The Certorix
 * client (certorix/api.ts) keeps its own `call` with its exact messages; the transport and the
 * helpers below are shared with it.
 */
import { createTransport, RequestInvalid, RequestTimeout, type Answer } from '../api/request.js';
import { ApiError, RotatorError, setTokenHint } from '../errors.js';
import { scrubSecrets, type Secret } from '../secret.js';
import { validateApiUrl } from '../api/url.js';
import { packageVersion } from '../version.js';
import type { CallOptions } from './types.js';

export const DEFAULT_TIMEOUT_MS = 15_000;
/** Responses are a few hundred bytes; anything near this is not the API talking. */
const MAX_BODY_BYTES = 1024 * 1024;
/** How long close() lets in-flight calls finish before cutting them off. */
const CLOSE_GRACE_MS = 1_000;

export function defaultUserAgent(): string {
  return `mcp-token-rotator/${packageVersion()} (MCP)`;
}

/** Retry-After: delay-seconds or an HTTP-date, in ms from now; undefined when absent or odd. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Header-legal bytes only and no outer whitespace: a value that can travel as `Bearer <value>`. */
export function isSendableToken(s: string): boolean {
  return s !== '' && !/[^\t\x20-\x7e\x80-\xff]/.test(s) && s.trim() === s;
}

export interface HttpClientOptions {
  /** For messages: "GitHub". */
  label: string;
  apiUrl: string;
  timeoutMs?: number;
  userAgent?: string;
  /** Where the base URL is set, for hints: '"apiUrls.github" (or GITHUB_API_URL)'. */
  urlHint: string;
  /** The web page where the user makes a new token. */
  tokenPage: string;
  /** The hint of a 403, by operation. */
  forbiddenHint?: (fp: string, what: string) => string;
  /** Extra request headers on every call (e.g. GitHub's Accept and API version). */
  headers?: Record<string, string>;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** Path under the base URL, e.g. '/user'. */
  path: string;
  /** "checking", "rotating". */
  doing: string;
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * The provider's own reading of a refusal (GitLab's insufficient_scope, Cloudflare's error
   * codes), tried before the defaults below; undefined falls back to them.
   */
  refuse?: (status: number, json: unknown, detail: string) => ApiError | undefined;
  /** The hint of a transient failure of this call, when the default would mislead (a rotate that is never repeated). */
  transientHint?: string;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: unknown;
}

export interface HttpClient {
  readonly origin: string;
  call(token: Secret, req: HttpRequest, opts?: CallOptions): Promise<HttpAnswer>;
  /** A 2xx whose body lacks what the API always sends: transient, like a proxy's page. */
  badShape(answer: HttpAnswer, req: HttpRequest, token: Secret, fields: string[]): ApiError;
  close(): Promise<void>;
}

/** A call as both clients make it: the token goes as a bearer, a body as JSON. */
export interface ApiSend {
  method: string;
  /** Path under the base URL. */
  path: string;
  signal?: AbortSignal | undefined;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * What the shared client and Certorix's set up the same way from a checked base URL: the
 * checked timeout, the User-Agent (which must name MCP for the providers' audit logs), one
 * transport, and `send`, which builds the request every call makes.
 */
export function createApiSender(base: URL, opts: { timeoutMs?: number | undefined; userAgent?: string | undefined }) {
  const origin = base.origin;
  const prefix = base.pathname.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const userAgent = opts.userAgent === undefined ? defaultUserAgent() : opts.userAgent.includes('MCP') ? opts.userAgent : `${opts.userAgent} (MCP)`;
  const transport = createTransport({ timeoutMs, maxBodyBytes: MAX_BODY_BYTES, closeGraceMs: CLOSE_GRACE_MS });
  function send(raw: string, req: ApiSend): Promise<Answer> {
    const json = req.body !== undefined;
    return transport.send({
      url: new URL(prefix + req.path, origin),
      method: req.method,
      signal: req.signal,
      headers: {
        authorization: `Bearer ${raw}`,
        accept: 'application/json',
        'user-agent': userAgent,
        ...(json ? { 'content-type': 'application/json' } : {}),
        ...req.headers,
      },
      ...(json ? { body: JSON.stringify(req.body) } : {}),
    });
  }
  return { origin, timeoutMs, transport, send };
}

/** Codes that mean no connection was ever made: the request did not reach the server. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const base = checkedApiUrl(opts.apiUrl, opts.label, opts.urlHint);
  const { origin, transport, send } = createApiSender(base, opts);
  const { label } = opts;
  const malformedHint = `Usually a proxy or an API incident. If it persists, check ${opts.urlHint} points at the ${label} API.`;

  async function call(token: Secret, req: HttpRequest, callOpts?: CallOptions): Promise<HttpAnswer> {
    const { method, path, doing } = req;
    const fp = token.fingerprint;
    const where = `${doing} token ${fp} (${method} ${path})`;
    const forToken = `${method} ${path} for token ${fp}`;
    const raw = token.reveal();
    if (!isSendableToken(raw)) {
      throw new ApiError('permanent', `Token ${fp} contains characters that cannot be sent in an HTTP header, so it cannot be a ${label} token.`, {
        hint: setTokenHint(fp, opts.tokenPage),
        notSent: true,
      });
    }
    if (transport.closed) throw new ApiError('permanent', `The ${label} client was already closed when ${where} was attempted.`, { notSent: true });
    const userSignal = callOpts?.signal;
    userSignal?.throwIfAborted();
    let answer: Answer;
    try {
      answer = await send(raw, { method, path, signal: userSignal, body: req.body, headers: { ...opts.headers, ...req.headers } });
    } catch (e) {
      throw classifyThrown(e);
    }
    const { status, headers } = answer;
    if (status >= 200 && status < 300) {
      if (answer.truncated) throw malformed(status, 'the body is larger than any API response');
      try {
        return { status, headers, json: JSON.parse(answer.text) as unknown };
      } catch {
        throw malformed(status, 'the body is not JSON');
      }
    }
    const detail = serverDetail(answer.text, raw);
    if (req.refuse) {
      let json: unknown;
      try {
        json = JSON.parse(answer.text) as unknown;
      } catch {
        json = undefined;
      }
      const own = req.refuse(status, json, detail);
      if (own) throw own;
    }
    if (status === 401) {
      throw new ApiError('invalid-token', `${label} rejected token ${fp} as invalid, expired or revoked (401) while ${doing} it.`, { status, hint: setTokenHint(fp, opts.tokenPage) });
    }
    if (status === 403 && !(headers['x-ratelimit-remaining'] === '0' || headers['retry-after'] !== undefined)) {
      throw new ApiError('forbidden', `${label} refused ${forToken} (403 Forbidden)${detail}.`, {
        status,
        hint: opts.forbiddenHint?.(fp, doing) ?? `The token is valid but not allowed to do this; make one with the permission at ${opts.tokenPage} and pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\`.`,
      });
    }
    if (status === 429 || status === 408 || status === 403 || status >= 500) {
      const retryAfterMs = parseRetryAfter(headers['retry-after']);
      const labelOf = status === 429 || status === 403 ? ' (rate limited)' : status === 408 ? ' (request timeout)' : '';
      const when = retryAfterMs === undefined ? '' : `; it asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
      throw new ApiError('transient', `The ${label} API answered ${status}${labelOf} to ${forToken}${detail}${when}.`, {
        status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        hint: req.transientHint ?? 'Try again later; the daemon retries on its own.',
        // Rate limiting happens before the API acts on anything.
        notSent: status === 429 || status === 403,
      });
    }
    throw new ApiError('permanent', `The ${label} API answered ${status} to ${forToken}${detail}.`, {
      status,
      hint: `Check ${opts.urlHint} (now ${origin}), and whether mcp-token-rotator needs an update for a changed API.`,
    });

    function malformed(status: number, why: string): ApiError {
      return new ApiError('transient', `The ${label} API sent an unexpected ${status} response while ${where}: ${why}.`, { status, hint: req.transientHint ?? malformedHint });
    }

    function classifyThrown(e: unknown): unknown {
      if (userSignal?.aborted) return userSignal.reason ?? e;
      const code = errorCode(e);
      const transient = (reason: string, notSent = false): ApiError =>
        new ApiError('transient', `Could not finish ${where} at ${origin}: ${scrub(reason, raw)}.`, {
          hint: req.transientHint ?? `Check the network connection and ${opts.urlHint}, then run the command again.`,
          cause: e,
          notSent,
        });
      // No connection within the time: the request never left.
      if (e instanceof RequestTimeout) return transient(e.message, e.phase === 'connect');
      if (transport.closed) return transient('the client was closed before the API answered');
      if (code && isTlsCode(code)) {
        return new ApiError('permanent', `The TLS connection to ${origin} failed (${code}) while ${where}: the API must offer TLS 1.3 with a certificate this machine trusts.`, {
          hint: `Check ${opts.urlHint} and any proxy intercepting HTTPS; older TLS and untrusted certificates are refused on purpose.`,
          cause: e,
          notSent: true,
        });
      }
      if (e instanceof RequestInvalid) {
        return new ApiError('permanent', `The request for ${where} could not be built (${e.code}).`, { hint: 'This is a bug in mcp-token-rotator; please report it.', cause: e, notSent: true });
      }
      return transient(`${describeNetworkError(e)}${code ? ` (${code})` : ''}`, code !== undefined && NOT_SENT_CODES.has(code));
    }
  }

  return {
    origin,
    call,
    badShape(answer, req, token, fields) {
      return new ApiError('transient', `The ${label} API sent an unexpected ${answer.status} response while ${req.doing} token ${token.fingerprint}: missing or invalid field(s) ${fields.join(', ')}.`, {
        status: answer.status,
        hint: malformedHint,
      });
    },
    close: () => transport.close(),
  };
}

/**
 * A failure of a harmless call made before a rotate (GitLab's GET of the old token's dates,
 * Cloudflare's verify for the token id): the rotate itself was never sent, so the failure is
 * `notSent` whatever its kind, and the engine may try the rotation again.
 */
export function asNotSent(e: unknown): unknown {
  if (!(e instanceof ApiError) || e.notSent) return e;
  return new ApiError(e.kind, e.message, {
    ...(e.status !== undefined ? { status: e.status } : {}),
    ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    ...(e.hint !== undefined ? { hint: e.hint } : {}),
    cause: e,
    notSent: true,
  });
}

/**
 * validateApiUrl with the provider's own hint: a GitLab entry's GITLAB_API_URL over plain
 * http to another host is refused, and the fix named is that variable, not Certorix's.
 */
export function checkedApiUrl(apiUrl: string, label: string, urlHint: string): URL {
  try {
    return validateApiUrl(apiUrl);
  } catch (e) {
    if (e instanceof RotatorError && e.code === 'E_INSECURE_URL') {
      throw new RotatorError('E_INSECURE_URL', `${e.message} No ${label} token is sent there.`, {
        hint: `Set ${urlHint} to an https:// URL; plain http:// is allowed only for 127.0.0.1, ::1 and localhost.`,
        cause: e,
      });
    }
    throw e;
  }
}

/** A header's single value (src/api/request.ts gives arrays for repeated headers). */
export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The server's own reason, if it gave a short one, for messages on refusals. */
export function serverDetail(text: string, raw: string): string {
  let msg: unknown;
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    // GitLab: error_description beside an OAuth error code; Cloudflare: errors[0] {code, message}.
    msg = j.error_description ?? j.error ?? j.message ?? j.detail;
    const first: unknown = Array.isArray(j.errors) ? j.errors[0] : undefined;
    if (msg === undefined && first && typeof first === 'object' && typeof (first as { message?: unknown }).message === 'string') {
      const { code, message } = first as { code?: unknown; message: string };
      msg = typeof code === 'number' ? `code ${code}: ${message}` : message;
    }
    if (msg && typeof msg === 'object' && 'message' in msg) msg = (msg as { message: unknown }).message;
  } catch {
    return '';
  }
  if (typeof msg !== 'string' || msg.trim() === '') return '';
  const clean = scrub(msg, raw).replace(/[^\x20-\x7e\u00a0-\uffff]+/g, ' ').trim();
  return `: "${clean.length > 200 ? `${clean.slice(0, 200)}...` : clean}"`;
}

/** A server or library message that happens to echo the token must not carry it on. */
export function scrub(text: string, raw: string): string {
  return scrubSecrets(raw.length > 0 ? text.split(raw).join('[token]') : text);
}

export function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && typeof cur === 'object' && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
  }
  return undefined;
}

export function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT' ||
    code === 'EPROTO'
  );
}

export function describeNetworkError(e: unknown): string {
  if (e instanceof Error && e.message) return e.message.length > 200 ? `${e.message.slice(0, 200)}...` : e.message;
  return 'network error';
}
