/**
 * A fake GitHub REST API on loopback, as far as a personal access token's lifecycle uses it
 * (contract: "More providers than Certorix"; GitHub's docs for the shapes):
 * - `GET /user` with `Authorization: Bearer <token>` -> 200 `{ login, id, ... }`, with
 *   `github-authentication-token-expiration: 2027-01-31 12:00:00 UTC` when the token expires
 *   and, for a classic token, `x-oauth-scopes: repo, read:org`;
 * - 401 `{ message: "Bad credentials", ... }` for an unknown, revoked or expired token;
 * - 404 `{ message: "Not Found" }` for anything else (there is no API that mints a PAT).
 * Fault knobs like test/fake/certorix.ts. It records every request it sees, whatever the
 * path, with the bearer's fingerprint (never the token), so a test can show that no token
 * of another provider ever reaches it. Node builtins only.
 */
import { createHash, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeGitHubToken {
  token: string;
  login: string;
  id: number;
  kind: 'classic' | 'fine-grained';
  /** Classic tokens only. */
  scopes: string[];
  /** ISO 8601, or null: no expiration. */
  expiresAt: string | null;
  live: boolean;
}

export type GitHubFault =
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'malformed' }
  | { kind: 'reset-before' }
  | { kind: 'hang' };

export interface SeenRequest {
  method: string;
  path: string;
  userAgent?: string;
  /** The Authorization header's value scheme ('Bearer', 'token', ...). */
  scheme?: string;
  bearerFingerprint?: string;
  status: number;
}

export interface FakeGitHub {
  url: string;
  addToken(opts?: { login?: string; kind?: 'classic' | 'fine-grained'; scopes?: string[]; expiresAt?: string | null; token?: string }): string;
  revoke(token: string): void;
  isLive(token: string): boolean;
  fault(match: { method?: string; path?: string; bearer?: string }, fault: GitHubFault, times?: number): void;
  requests: SeenRequest[];
  now: () => Date;
  close(): Promise<void>;
}

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function fakeGitHubToken(kind: 'classic' | 'fine-grained' = 'classic'): string {
  let s = kind === 'classic' ? 'ghp_' : 'github_pat_';
  for (let i = 0; i < (kind === 'classic' ? 36 : 82); i++) s += B62[randomInt(B62.length)];
  return s;
}

function fingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

/** GitHub's format: "2027-01-31 12:00:00 UTC". */
export function expirationHeader(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export async function startFakeGitHub(opts: { port?: number; host?: string } = {}): Promise<FakeGitHub> {
  const tokens = new Map<string, FakeGitHubToken>();
  const faults: Array<{ method?: string; path?: string; bearer?: string; fault: GitHubFault; remaining: number }> = [];
  const sockets = new Set<Socket>();
  let nextId = 1000;

  const api: FakeGitHub = {
    url: '',
    requests: [],
    now: () => new Date(),
    addToken(o = {}) {
      const kind = o.kind ?? 'classic';
      const token = o.token ?? fakeGitHubToken(kind);
      tokens.set(token, {
        token,
        login: o.login ?? 'octocat',
        id: nextId++,
        kind,
        scopes: kind === 'classic' ? (o.scopes ?? ['repo', 'read:org']) : [],
        expiresAt: o.expiresAt === undefined ? null : o.expiresAt,
        live: true,
      });
      return token;
    },
    revoke(token) {
      const t = tokens.get(token);
      if (t) t.live = false;
    },
    isLive(token) {
      const t = tokens.get(token);
      return !!t && t.live && (t.expiresAt === null || Date.parse(t.expiresAt) > api.now().getTime());
    },
    fault(match, fault, times = 1) {
      faults.push({ ...match, fault, remaining: times });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    const auth = req.headers.authorization ?? '';
    const m = /^(\S+)\s+(.+)$/.exec(auth);
    const token = m?.[2];
    const rec: SeenRequest = {
      method,
      path,
      status: 0,
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
      ...(m?.[1] ? { scheme: m[1] } : {}),
      ...(token ? { bearerFingerprint: fingerprint(token) } : {}),
    };
    api.requests.push(rec);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    req.resume();
    req.on('end', () => {
      const i = faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || f.path === path) && (!f.bearer || f.bearer === rec.bearerFingerprint));
      const q = i >= 0 ? faults[i] : undefined;
      if (q) {
        q.remaining--;
        if (q.remaining <= 0) faults.splice(i, 1);
        switch (q.fault.kind) {
          case 'status':
            return reply(q.fault.status, q.fault.body ?? { message: 'injected failure' }, q.fault.headers);
          case 'malformed':
            return reply(200, '<html>proxy</html>');
          case 'reset-before':
          case 'hang':
            if (q.fault.kind === 'reset-before') req.socket.destroy();
            return;
        }
      }
      if (method === 'GET' && path === '/user') {
        const t = token ? tokens.get(token) : undefined;
        if (!t || !api.isLive(t.token)) return reply(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
        const headers: Record<string, string> = { 'x-github-media-type': 'github.v3' };
        if (t.expiresAt) headers['github-authentication-token-expiration'] = expirationHeader(t.expiresAt);
        if (t.kind === 'classic') headers['x-oauth-scopes'] = t.scopes.join(', ');
        return reply(200, { login: t.login, id: t.id, type: 'User', site_admin: false, name: null, email: null }, headers);
      }
      return reply(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', r));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
