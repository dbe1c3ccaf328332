/**
 * The plumbing the provider fakes (gitlab.ts, cloudflare.ts) share: a node:http server on
 * loopback that records every request (method, path, the fingerprint of the credential it
 * carried), queued fault knobs, and a close() that never hangs. Each fake supplies only its
 * API's behaviour (`act`), so the knobs behave the same everywhere. Node builtins only, so
 * the fakes can run as their own process too.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'malformed' }
  /** The connection dies before the server acts: nothing happened. */
  | { kind: 'reset-before' }
  /** "Lose the answer": the server acts (a rotate rotates), then destroys the connection. */
  | { kind: 'reset-after' }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number };

export interface RecordedRequest {
  method: string;
  path: string;
  /** Fingerprint (sha256 hex, 12 chars, as the product's) of the credential the request carried. */
  tokenFingerprint?: string;
  /** Which header carried it: `authorization` (Bearer) or `private-token`. */
  credentialHeader?: 'authorization' | 'private-token';
  userAgent?: string;
  /** The request body as sent (the APIs' bodies carry no secret: `{}` or an expiry date). */
  body: string;
  /** 0 while unanswered, and for a request whose socket was destroyed (reset, hang). */
  status: number;
}

export interface Reply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface FaultMatch {
  method?: string;
  path?: string;
  /** Only requests whose credential has this fingerprint. */
  token?: string;
}

export interface HttpFake {
  url: string;
  requests: RecordedRequest[];
  delayMs: number;
  fault(match: FaultMatch, fault: Fault, times?: number): void;
  close(): Promise<void>;
}

export interface ActContext {
  req: IncomingMessage;
  method: string;
  /** Path without the fake's own prefix (e.g. `/personal_access_tokens/self`). */
  path: string;
  /** The raw credential, from `Authorization: Bearer` or `PRIVATE-TOKEN`. */
  credential: string | undefined;
  body: string;
}

export interface StartHttpFakeOptions {
  name: string;
  /** A path prefix every API path lives under (`/api/v4`, `/client/v4`); others get 404. */
  prefix: string;
  port?: number;
  host?: string;
  act: (ctx: ActContext) => Reply;
  notFound: () => Reply;
  malformed: (method: string) => Reply;
  faultBody: (status: number) => string;
}

export function fingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

export function credentialOf(req: IncomingMessage): { value: string; header: 'authorization' | 'private-token' } | undefined {
  const pt = req.headers['private-token'];
  if (typeof pt === 'string' && pt !== '') return { value: pt, header: 'private-token' };
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer (.+)$/i.exec(h);
  return m?.[1] === undefined ? undefined : { value: m[1], header: 'authorization' };
}

export const jsonReply = (status: number, value: unknown): Reply => ({ status, body: JSON.stringify(value) });

export async function startHttpFake(opts: StartHttpFakeOptions): Promise<HttpFake> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const faults: Array<FaultMatch & { fault: Fault; remaining: number }> = [];
  let closed = false;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (ms <= 0) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const takeFault = (method: string, path: string, fp: string | undefined): Fault | undefined => {
    const i = faults.findIndex(
      (f) => f.remaining > 0 && (f.method === undefined || f.method === method) && (f.path === undefined || f.path === path) && (f.token === undefined || f.token === fp),
    );
    if (i < 0) return undefined;
    const q = faults[i]!;
    q.remaining--;
    if (q.remaining <= 0) faults.splice(i, 1);
    return q.fault;
  };

  const send = (res: ServerResponse, record: RecordedRequest, reply: Reply): void => {
    record.status = reply.status;
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(reply.status, {
      'content-type': reply.body.startsWith('{') ? 'application/json' : 'text/html',
      'content-length': Buffer.byteLength(reply.body),
      ...reply.headers,
    });
    res.end(reply.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const fullPath = new URL(req.url ?? '/', 'http://fake').pathname;
    const cred = credentialOf(req);
    const ua = req.headers['user-agent'];
    const body = await readBody(req);
    const record: RecordedRequest = {
      method,
      path: fullPath,
      ...(cred ? { tokenFingerprint: fingerprint(cred.value), credentialHeader: cred.header } : {}),
      ...(typeof ua === 'string' ? { userAgent: ua } : {}),
      body,
      status: 0,
    };
    api.requests.push(record);
    await sleep(api.delayMs);
    if (closed) return;

    const inPrefix = fullPath === opts.prefix || fullPath.startsWith(`${opts.prefix}/`);
    const ctx: ActContext = { req, method, path: fullPath.slice(opts.prefix.length), credential: cred?.value, body };
    const act = (): Reply => (inPrefix ? opts.act(ctx) : opts.notFound());

    const fault = takeFault(method, fullPath, record.tokenFingerprint);
    switch (fault?.kind) {
      case undefined:
        return send(res, record, act());
      case 'status':
        return send(res, record, {
          status: fault.status,
          body: fault.body ?? opts.faultBody(fault.status),
          ...(fault.retryAfter !== undefined ? { headers: { 'retry-after': fault.retryAfter } } : {}),
        });
      case 'malformed':
        // Acts on nothing: a proxy or a broken deploy answering in the service's place.
        return send(res, record, opts.malformed(method));
      case 'reset-before':
        req.socket.destroy();
        return;
      case 'reset-after':
        act();
        req.socket.destroy();
        return;
      case 'hang':
        return;
      case 'delay':
        await sleep(fault.ms);
        if (closed) return;
        return send(res, record, act());
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: e instanceof Error ? e.message : 'internal error' }));
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

  const api: HttpFake = {
    url: `http://${urlHost}:${addr.port}${opts.prefix}`,
    requests: [],
    delayMs: 0,
    fault(match, fault, times = 1) {
      if (times <= 0) return;
      faults.push({ ...match, ...(match.method ? { method: match.method.toUpperCase() } : {}), fault, remaining: times });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
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
