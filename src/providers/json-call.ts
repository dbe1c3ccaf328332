/**
 * One JSON request to a provider's REST API, classified into ApiError: the transport the
 * GitLab and Cloudflare clients share (the Certorix client predates it and keeps its own).
 * Like the Certorix client: exactly one HTTP request per call (retries are the caller's
 * business, and for a provider without idempotency there are none after the request may
 * have reached the server), TLS 1.3, a User-Agent that names MCP, no redirects followed (a
 * token never follows a 3xx to another host), bodies capped, and every message scrubbed of
 * the token. The base URL was checked by `checkedBase` first: https, or http on loopback.
 *
 * Provider specifics stay with the provider: `refuse(status, json)` turns a non-2xx answer
 * into its own ApiError (401, 403 with the scope or permission to add, ...) or leaves it to
 * the defaults here (429/408/5xx transient, anything else permanent).
 */
import { Agent, request } from 'undici';
import { ApiError, RotatorError } from '../errors.js';
import { scrubSecrets, type Secret } from '../secret.js';
import { validateApiUrl } from '../api/url.js';
import { defaultUserAgent, isSendableToken, parseRetryAfter } from '../api/certorix.js';
import type { CallOptions } from './types.js';

export const DEFAULT_TIMEOUT_MS = 15_000;
const MAX_BODY_BYTES = 1024 * 1024;
const CLOSE_GRACE_MS = 1_000;

export interface JsonClientOptions {
  /** "GitLab", "Cloudflare": for messages. */
  label: string;
  apiUrl: string;
  /** Where the base URL is set, for hints: 'GITLAB_API_URL in the entry's env'. */
  urlSetting: string;
  timeoutMs?: number;
  userAgent?: string;
}

export interface JsonRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** Below the base URL's path, e.g. `/personal_access_tokens/self`. */
  path: string;
  /** 'checking', 'rotating': for messages. */
  doing: string;
  token: Secret;
  /** The headers that carry the token (`PRIVATE-TOKEN`, `Authorization: Bearer`). */
  auth: (raw: string) => Record<string, string>;
  /** A JSON body; sent with content-type application/json. */
  body?: string;
  /** Provider-specific refusals; return undefined to fall back to the defaults. */
  refuse?: (status: number, json: unknown, detail: string) => ApiError | undefined;
  /** Hint for the transient defaults (network, 429, 5xx). */
  transientHint: string;
}

export interface JsonResponse {
  status: number;
  json: unknown;
}

export interface JsonClient {
  readonly origin: string;
  call(req: JsonRequest, opts?: CallOptions): Promise<JsonResponse>;
  close(): Promise<void>;
}

/**
 * The base URL a token may be sent to, checked (https, or http on loopback, no userinfo),
 * with the provider's own hint in place of the Certorix settings one.
 */
export function checkedBase(apiUrl: string, label: string, urlSetting: string): URL {
  try {
    return validateApiUrl(apiUrl);
  } catch (e) {
    if (e instanceof RotatorError && e.code === 'E_INSECURE_URL') {
      throw new RotatorError('E_INSECURE_URL', `${e.message.replace(/^The API URL/, `The ${label} API URL`)} No ${label} token is sent there.`, {
        hint: `Set ${urlSetting} to an https:// URL (plain http:// is allowed only for 127.0.0.1, ::1 and localhost).`,
        cause: e,
      });
    }
    throw e;
  }
}

export function createJsonClient(opts: JsonClientOptions): JsonClient {
  const { label } = opts;
  const base = checkedBase(opts.apiUrl, label, opts.urlSetting);
  const origin = base.origin;
  const prefix = base.pathname.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const userAgent = opts.userAgent === undefined ? defaultUserAgent() : opts.userAgent.includes('MCP') ? opts.userAgent : `${opts.userAgent} (MCP)`;
  const agent = new Agent({ connect: { minVersion: 'TLSv1.3', timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  let closed = false;
  const inFlight = new Set<Promise<void>>();

  async function call(req: JsonRequest, callOpts?: CallOptions): Promise<JsonResponse> {
    const fp = req.token.fingerprint;
    const where = `${req.doing} ${label} token ${fp} (${req.method} ${req.path})`;
    const raw = req.token.reveal();
    if (!isSendableToken(raw)) {
      throw new ApiError('invalid-token', `Token ${fp} contains characters that cannot be sent in an HTTP header, so it cannot be a ${label} token.`);
    }
    if (closed) throw new ApiError('permanent', `The ${label} client was already closed when ${where} was attempted.`);
    const userSignal = callOpts?.signal;
    userSignal?.throwIfAborted();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onUserAbort = (): void => controller.abort(userSignal?.reason);
    userSignal?.addEventListener('abort', onUserAbort, { once: true });
    const transient = (reason: string, cause?: unknown, extra: { status?: number; retryAfterMs?: number } = {}): ApiError =>
      new ApiError('transient', `Could not finish ${where} at ${origin}: ${scrub(reason, raw)}.`, { hint: req.transientHint, cause, ...extra });

    let settle = (): void => {};
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    inFlight.add(settled);
    try {
      let res;
      try {
        res = await request(new URL(prefix + req.path, origin), {
          dispatcher: agent,
          method: req.method,
          signal: controller.signal,
          headers: {
            ...req.auth(raw),
            accept: 'application/json',
            'user-agent': userAgent,
            ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(req.body !== undefined ? { body: req.body } : {}),
        });
      } catch (e) {
        throw classifyThrown(e);
      }
      const { statusCode: status, headers } = res;
      let body: { text: string; truncated: boolean };
      try {
        body = await readCapped(res.body, MAX_BODY_BYTES);
      } catch (e) {
        throw classifyThrown(e);
      }
      let json: unknown;
      try {
        json = body.truncated ? undefined : (JSON.parse(body.text) as unknown);
      } catch {
        json = undefined;
      }
      if (status >= 200 && status < 300) {
        if (json === undefined) {
          throw new ApiError('transient', `The ${label} API sent an unexpected ${status} response while ${where}: ${body.truncated ? 'the body is too large' : 'the body is not JSON'}.`, {
            status,
            hint: `Usually a proxy or an API incident. Check ${opts.urlSetting} points at the ${label} API.`,
          });
        }
        return { status, json };
      }
      const detail = serverDetail(json, raw);
      const own = req.refuse?.(status, json, detail);
      if (own) throw own;
      if (status === 429 || status === 408 || status >= 500) {
        const retryAfterMs = parseRetryAfter(headers['retry-after']);
        const label2 = status === 429 ? ' (rate limited)' : '';
        const when = retryAfterMs === undefined ? '' : `; it asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
        throw new ApiError('transient', `The ${label} API answered ${status}${label2} to ${req.method} ${req.path} for token ${fp}${detail}${when}.`, {
          status,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          hint: req.transientHint,
        });
      }
      throw new ApiError('permanent', `The ${label} API answered ${status} to ${req.method} ${req.path} for token ${fp}${detail}.`, {
        status,
        hint: `Check ${opts.urlSetting} (now ${origin}${prefix}), and whether mcp-token-rotator needs an update for a changed API.`,
      });
    } finally {
      clearTimeout(timer);
      userSignal?.removeEventListener('abort', onUserAbort);
      inFlight.delete(settled);
      settle();
    }

    function classifyThrown(e: unknown): unknown {
      if (userSignal?.aborted) return userSignal.reason ?? e;
      if (timedOut) return transient(`no complete answer within ${timeoutMs} ms`, e);
      if (closed) return transient('the client was closed before the API answered', e);
      const code = errorCode(e);
      if (code && isTlsCode(code)) {
        return new ApiError('permanent', `The TLS connection to ${origin} failed (${code}) while ${where}: the API must offer TLS 1.3 with a certificate this machine trusts.`, {
          hint: `Check ${opts.urlSetting} and any proxy intercepting HTTPS; older TLS and untrusted certificates are refused on purpose.`,
          cause: e,
        });
      }
      const msg = e instanceof Error && e.message ? e.message.slice(0, 200) : 'network error';
      return transient(`${msg}${code ? ` (${code})` : ''}`, e);
    }
  }

  return {
    origin,
    call,
    async close() {
      if (closed) return;
      closed = true;
      if (inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(inFlight), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
        clearTimeout(timer);
      }
      await agent.destroy();
    },
  };
}

async function readCapped(body: AsyncIterable<unknown> & { destroy(): unknown }, cap: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buf.length;
      if (size > cap) return { text: '', truncated: true };
      chunks.push(buf);
    }
  } finally {
    body.destroy();
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

/**
 * The server's own short reason, for messages: GitLab's `message`/`error_description`/`error`,
 * Cloudflare's `errors[0]` ("code 10000: Authentication error").
 */
export function serverDetail(json: unknown, raw: string): string {
  if (json === null || typeof json !== 'object') return '';
  const j = json as Record<string, unknown>;
  let msg: unknown = j.error_description ?? j.message ?? j.error;
  if (Array.isArray(j.errors) && j.errors.length > 0) {
    const e = j.errors[0] as { code?: unknown; message?: unknown };
    msg = typeof e.message === 'string' ? (typeof e.code === 'number' ? `code ${e.code}: ${e.message}` : e.message) : msg;
  }
  if (msg !== null && typeof msg === 'object') msg = JSON.stringify(msg);
  if (typeof msg !== 'string' || msg.trim() === '') return '';
  const clean = scrub(msg, raw).replace(/[^\x20-\x7e\u00a0-\uffff]+/g, ' ').trim();
  return `: "${clean.length > 200 ? `${clean.slice(0, 200)}...` : clean}"`;
}

function scrub(text: string, raw: string): string {
  return scrubSecrets(raw.length > 0 ? text.split(raw).join('[token]') : text);
}

function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && typeof cur === 'object' && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
  }
  return undefined;
}

function isTlsCode(code: string): boolean {
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.includes('CERT') || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT' || code === 'EPROTO';
}

/** A minted token we could not send back or write into a config would be lost on arrival. */
export function usableNewToken(v: unknown): v is string {
  return typeof v === 'string' && isSendableToken(v) && !v.includes('${');
}
