/**
 * The GitHub REST API, as far as a personal access token's lifecycle needs it:
 * `GET /user` -> 200 `{ login, id, ... }`, with `github-authentication-token-expiration:
 * 2027-01-31 12:00:00 UTC` when the token expires and `x-oauth-scopes: repo, user` for a
 * classic token; 401 when it is invalid, expired or revoked. There is no regenerate.
 */
import { createHttpClient, headerValue, type HttpRequest } from '../http.js';
import type { ClientOptions, ProviderClient, TokenInfo } from '../types.js';
import { github } from './index.js';

const USER: HttpRequest = { method: 'GET', path: '/user', doing: 'checking' };

/** "2027-01-31 12:00:00 UTC" (or with a numeric offset, as some Enterprise versions send) -> ISO 8601. */
export function parseGitHubExpiration(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})\s*(UTC|Z|[+-]\d{2}:?\d{2})?\s*$/i.exec(v);
  if (!m) return undefined;
  const zone = m[3] === undefined || /^(utc|z)$/i.test(m[3]) ? 'Z' : m[3].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
  const t = Date.parse(`${m[1]}T${m[2]}${zone}`);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** Classic tokens list their scopes; fine-grained ones (and apps) send no such header. */
export function parseScopes(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function createGitHubClient(opts: ClientOptions): ProviderClient {
  const page = github.tokenPage(opts.apiUrl);
  const http = createHttpClient({
    label: 'GitHub',
    apiUrl: opts.apiUrl,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.userAgent !== undefined ? { userAgent: opts.userAgent } : {}),
    urlHint: '"apiUrls.github" in the settings (or GITHUB_API_URL)',
    tokenPage: page,
    headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
  });
  return {
    name: 'github',
    async inspect(token, callOpts) {
      const res = await http.call(token, USER, callOpts);
      const d = res.json as { login?: unknown; id?: unknown } | null;
      const bad = d === null || typeof d !== 'object' ? ['(body)'] : typeof d.login !== 'string' || d.login === '' ? ['login'] : [];
      if (bad.length) throw http.badShape(res, USER, token, bad);
      const body = d as { login: string; id?: unknown };
      const scopes = parseScopes(headerValue(res.headers, 'x-oauth-scopes'));
      const raw = token.reveal();
      // The prefix only names the kind of a token already attributed to GitHub by its entry.
      const tokenKind = raw.startsWith('github_pat_') ? 'fine-grained' : raw.startsWith('ghp_') || scopes !== undefined ? 'classic' : 'unknown';
      const expHeader = headerValue(res.headers, 'github-authentication-token-expiration');
      const info: TokenInfo = {
        id: typeof body.id === 'number' || typeof body.id === 'string' ? String(body.id) : body.login,
        role: scopes !== undefined ? scopes.join(', ') || '(no scopes)' : tokenKind,
        email: body.login,
        tokenKind,
      };
      // No header on a 200: the token does not expire. One we cannot read: unknown.
      const expiresAt = expHeader === undefined ? null : parseGitHubExpiration(expHeader);
      if (expiresAt !== undefined) info.expiresAt = expiresAt;
      if (scopes !== undefined) info.scopes = scopes;
      return info;
    },
    close: () => http.close(),
  };
}
