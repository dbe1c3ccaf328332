/**
 * A fake Certorix REST API on loopback that honours the contract ("The Certorix REST API"),
 * with knobs to inject the failures the rotator must survive. Used by the test suites and,
 * through `serve.ts`, by demos and spawned end-to-end runs, so it depends on node builtins
 * only (no vitest, nothing from src/).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeToken {
  token: string;
  id: string;
  email: string;
  role: 'admin' | 'editor' | 'viewer';
  createdAt: string;
  live: boolean;
}

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'malformed' }
  | { kind: 'reset-before' }
  | { kind: 'reset-after' }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number };

export interface FakeRequest {
  method: string;
  path: string;
  idempotencyKey?: string;
  userAgent?: string;
  bearerFingerprint?: string;
  /** 0 while unanswered, and for a request whose socket was destroyed (reset, hang). */
  status: number;
}

export interface FakeCertorix {
  url: string;
  addToken(opts?: { email?: string; role?: 'admin' | 'editor' | 'viewer'; ageDays?: number; createdAt?: string; token?: string }): string;
  isLive(token: string): boolean;
  /** What "Regenerate token" in the web UI does to the old token: it dies at once. */
  revoke(token: string): void;
  liveTokens(email?: string): FakeToken[];
  all(): FakeToken[];
  /** `bearer`: only requests whose bearer token has this fingerprint. */
  fault(match: { method?: string; path?: string; bearer?: string }, fault: Fault, times?: number): void;
  delayMs: number;
  tokenFactory: () => string;
  requests: FakeRequest[];
  regenerateCount: number;
  now: () => Date;
  close(): Promise<void>;
}

export interface StartFakeOptions {
  port?: number;
  host?: string;
  /**
   * Serve a small admin surface under `/_fake/` (state, add-token, fault) so a process that
   * spawned `serve.ts` can steer the fake. Off by default: in-process tests use the object.
   */
  control?: boolean;
}

const TOKEN_PATH = '/v1/token';
const REGENERATE_PATH = '/v1/token/regenerate';
const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function defaultTokenFactory(): string {
  let s = 'ctx_';
  for (let i = 0; i < 40; i++) s += BASE62[randomInt(BASE62.length)];
  return s;
}

/** Same definition as the product's fingerprint, repeated here so the fake imports nothing from src/. */
function fingerprint(token: string): string {
  return sha256(token).slice(0, 12);
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

interface QueuedFault {
  method: string | undefined;
  path: string | undefined;
  bearer: string | undefined;
  fault: Fault;
  remaining: number;
}

interface IdempotencyRecord {
  // A hash, not the bearer: the fake keeps no more token material than it must.
  bearerHash: string;
  status: number;
  body: string;
  at: number;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'bad request',
  401: 'invalid or revoked token',
  403: 'forbidden',
  404: 'not found',
  405: 'method not allowed',
  422: 'idempotency key reused with a different token',
  429: 'too many requests',
  500: 'internal server error',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
};

export async function startFakeCertorix(opts: StartFakeOptions = {}): Promise<FakeCertorix> {
  const host = opts.host ?? '127.0.0.1';
  const tokens = new Map<string, FakeToken>();
  const idempotency = new Map<string, IdempotencyRecord>();
  const faults: QueuedFault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let idCounter = 0;
  let closed = false;

  const newId = (): string => `tok_${(++idCounter).toString().padStart(4, '0')}${randomBytes(4).toString('hex')}`;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (ms <= 0) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const takeFault = (method: string, path: string, bearerFp: string | undefined): Fault | undefined => {
    const i = faults.findIndex(
      (f) =>
        f.remaining > 0 && (f.method === undefined || f.method === method) && (f.path === undefined || f.path === path) && (f.bearer === undefined || f.bearer === bearerFp),
    );
    if (i < 0) return undefined;
    const q = faults[i]!;
    q.remaining--;
    if (q.remaining <= 0) faults.splice(i, 1);
    return q.fault;
  };

  interface Reply {
    status: number;
    body: string;
    headers?: Record<string, string>;
  }

  const json = (status: number, value: unknown): Reply => ({ status, body: JSON.stringify(value) });
  const error = (status: number, message = STATUS_TEXT[status] ?? 'error'): Reply => json(status, { error: message });

  const bearerOf = (req: IncomingMessage): string | undefined => {
    const h = req.headers.authorization;
    if (typeof h !== 'string') return undefined;
    const m = /^Bearer (.+)$/i.exec(h);
    return m?.[1];
  };

  const liveRecord = (bearer: string | undefined): FakeToken | undefined => {
    if (bearer === undefined) return undefined;
    const t = tokens.get(bearer);
    return t?.live ? t : undefined;
  };

  /** The API's real behaviour, without faults. Mutates state (regenerate) before returning. */
  const act = (req: IncomingMessage, method: string, path: string): Reply => {
    const ua = req.headers['user-agent'];
    // The real service labels audit entries by this; the fake refuses without it so our client is checked.
    if (typeof ua !== 'string' || !ua.includes('MCP')) return error(400, 'User-Agent must identify the MCP source');
    const bearer = bearerOf(req);

    if (path === TOKEN_PATH) {
      if (method !== 'GET') return error(405);
      const rec = liveRecord(bearer);
      if (!rec) return error(401);
      return json(200, { id: rec.id, role: rec.role, email: rec.email, created_at: rec.createdAt });
    }

    if (path === REGENERATE_PATH) {
      if (method !== 'POST') return error(405);
      const key = req.headers['idempotency-key'];
      if (typeof key !== 'string' || key === '') return error(400, 'Idempotency-Key header is required');
      if (bearer === undefined) return error(401);
      const bearerHash = sha256(bearer);
      const nowMs = api.now().getTime();
      const seen = idempotency.get(key);
      if (seen && nowMs - seen.at < IDEMPOTENCY_WINDOW_MS) {
        if (seen.bearerHash !== bearerHash) return error(422);
        return { status: seen.status, body: seen.body };
      }
      const rec = liveRecord(bearer);
      if (!rec) return error(401);
      rec.live = false;
      const fresh: FakeToken = {
        token: uniqueToken(),
        id: newId(),
        email: rec.email,
        role: rec.role,
        createdAt: api.now().toISOString(),
        live: true,
      };
      tokens.set(fresh.token, fresh);
      api.regenerateCount++;
      const reply = json(201, { token: fresh.token, id: fresh.id, created_at: fresh.createdAt });
      idempotency.set(key, { bearerHash, status: reply.status, body: reply.body, at: nowMs });
      return reply;
    }

    return error(404);
  };

  const uniqueToken = (): string => {
    for (let i = 0; i < 100; i++) {
      const t = api.tokenFactory();
      if (!tokens.has(t)) return t;
    }
    throw new Error('fake certorix: tokenFactory keeps returning tokens that already exist');
  };

  const send = (res: ServerResponse, record: FakeRequest, reply: Reply): void => {
    record.status = reply.status;
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(reply.status, {
      'content-type': reply.body.startsWith('{') ? 'application/json' : 'text/html',
      'content-length': Buffer.byteLength(reply.body),
      ...reply.headers,
    });
    res.end(reply.body);
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> => {
    const body = await readBody(req);
    const reply = (status: number, value: unknown): void => {
      const text = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      if (method === 'GET' && path === '/_fake/state') {
        return reply(200, { regenerateCount: api.regenerateCount, tokens: api.all(), requests: api.requests });
      }
      if (method === 'POST' && path === '/_fake/tokens') {
        return reply(201, { token: api.addToken(input as Parameters<FakeCertorix['addToken']>[0]) });
      }
      if (method === 'POST' && path === '/_fake/fault') {
        const match = (input.match ?? {}) as { method?: string; path?: string };
        api.fault(match, input.fault as Fault, typeof input.times === 'number' ? input.times : 1);
        return reply(200, { ok: true });
      }
      return reply(404, { error: 'unknown control endpoint' });
    } catch (e) {
      return reply(400, { error: e instanceof Error ? e.message : String(e) });
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://fake').pathname;

    if (opts.control && path.startsWith('/_fake/')) return handleControl(req, res, method, path);

    const bearer = bearerOf(req);
    const key = req.headers['idempotency-key'];
    const ua = req.headers['user-agent'];
    const record: FakeRequest = {
      method,
      path,
      ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
      ...(typeof ua === 'string' ? { userAgent: ua } : {}),
      ...(bearer !== undefined ? { bearerFingerprint: fingerprint(bearer) } : {}),
      status: 0,
    };
    api.requests.push(record);

    // The API takes no request body; drain it so the socket stays usable.
    await readBody(req);
    await sleep(api.delayMs);
    if (closed) return;

    const fault = takeFault(method, path, record.bearerFingerprint);
    switch (fault?.kind) {
      case undefined:
        return send(res, record, act(req, method, path));
      case 'status':
        return send(res, record, {
          status: fault.status,
          body: fault.body ?? JSON.stringify({ error: STATUS_TEXT[fault.status] ?? 'injected failure' }),
          ...(fault.retryAfter !== undefined ? { headers: { 'retry-after': fault.retryAfter } } : {}),
        });
      case 'malformed':
        // Acts on nothing: a proxy or a broken deploy answering in the service's place.
        return send(res, record, { status: method === 'POST' ? 201 : 200, body: '<html><body>Gateway says hi</body></html>' });
      case 'reset-before':
        req.socket.destroy();
        return;
      case 'reset-after':
        act(req, method, path);
        req.socket.destroy();
        return;
      case 'hang':
        // Left open on purpose; close() destroys the socket.
        return;
      case 'delay':
        await sleep(fault.ms);
        if (closed) return;
        return send(res, record, act(req, method, path));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: e instanceof Error ? e.message : 'internal error' }));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  const api: FakeCertorix = {
    url: `http://${urlHost}:${addr.port}`,
    delayMs: 0,
    tokenFactory: defaultTokenFactory,
    requests: [],
    regenerateCount: 0,
    now: () => new Date(),

    addToken(o = {}) {
      const token = o.token ?? uniqueToken();
      if (tokens.has(token)) throw new Error('fake certorix: that token already exists');
      const createdAt =
        o.createdAt ?? new Date(api.now().getTime() - Math.round((o.ageDays ?? 0) * DAY_MS)).toISOString();
      tokens.set(token, {
        token,
        id: newId(),
        email: o.email ?? 'user@example.com',
        role: o.role ?? 'editor',
        createdAt,
        live: true,
      });
      return token;
    },
    isLive(token) {
      return tokens.get(token)?.live === true;
    },
    revoke(token) {
      const t = tokens.get(token);
      if (t) t.live = false;
    },
    liveTokens(email) {
      return api.all().filter((t) => t.live && (email === undefined || t.email === email));
    },
    all() {
      return [...tokens.values()].map((t) => ({ ...t }));
    },
    fault(match, fault, times = 1) {
      if (times <= 0) return;
      faults.push({ method: match.method?.toUpperCase(), path: match.path, bearer: match.bearer, fault, remaining: times });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      // Hung and keep-alive connections would hold close() open forever.
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await done;
    },
  };
  return api;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
