import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect as utilInspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCertorixProvider, defaultUserAgent, parseRetryAfter } from '../../src/providers/certorix/api.js';
import type { Provider } from '../../src/providers/types.js';
import { ApiError, RotatorError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';

let fake: FakeCertorix;
let api: Provider;

beforeEach(async () => {
  fake = await startFakeCertorix();
  api = createCertorixProvider({ apiUrl: fake.url, timeoutMs: 2000 });
});
afterEach(async () => {
  await api.close();
  await fake.close();
});

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected the call to fail');
}

/** The contract's first rule for errors: no token value in anything a user or log can see. */
function expectNoToken(err: unknown, ...tokens: string[]): void {
  const views = [(err as Error).message, JSON.stringify(err), utilInspect(err, { depth: 5 }), String((err as RotatorError).hint)];
  if (err instanceof RotatorError) views.push(err.describe());
  for (const t of tokens) for (const v of views) expect(v).not.toContain(t);
}

describe('inspect', () => {
  it('returns the id, role, email and created_at of a live token', async () => {
    const token = fake.addToken({ email: 'ana@example.com', role: 'admin', createdAt: '2025-01-02T03:04:05.000Z' });
    const info = await api.inspect(new Secret(token));
    expect(info).toEqual({ id: fake.all()[0]!.id, role: 'admin', email: 'ana@example.com', createdAt: '2025-01-02T03:04:05.000Z' });
  });

  it('normalises created_at to UTC ISO and tolerates unknown roles and missing optional fields', async () => {
    const token = fake.addToken({});
    fake.fault({}, { kind: 'status', status: 200, body: '{"id":"t1","role":"owner","created_at":"2025-06-01T12:00:00+02:00"}' });
    expect(await api.inspect(new Secret(token))).toEqual({ id: 't1', role: 'owner', createdAt: '2025-06-01T10:00:00.000Z' });
  });

  it('classifies 401 as invalid-token with the set-token hint', async () => {
    const token = 'ctx_not_a_live_token_0123456789';
    const secret = new Secret(token);
    const err = await rejection(api.inspect(secret));
    expect(err.kind).toBe('invalid-token');
    expect(err.code).toBe('E_TOKEN_INVALID');
    expect(err.status).toBe(401);
    expect(err.message).toContain(`token ${secret.fingerprint}`);
    expect(err.hint).toMatch(/Certorix web UI \(MCP \/ API page\)/);
    expect(err.hint).toContain(`mcp-token-rotator set-token --fingerprint ${secret.fingerprint}`);
    expectNoToken(err, token);
  });
});

describe('regenerate', () => {
  it('returns the new token; the old one is dead, the new one live with the same role and email', async () => {
    const old = fake.addToken({ email: 'bo@example.com', role: 'viewer', ageDays: 120 });
    const res = await api.regenerate(new Secret(old), 'key-1');
    const minted = fake.liveTokens()[0]!;
    expect(res.token.reveal()).toBe(minted.token);
    expect(res.id).toBe(minted.id);
    expect(res.createdAt).toBe(minted.createdAt);
    expect(fake.isLive(old)).toBe(false);
    expect(await api.inspect(res.token)).toMatchObject({ role: 'viewer', email: 'bo@example.com' });
    expect(fake.regenerateCount).toBe(1);
    expect(String(res.token)).toBe(`[token ${res.token.fingerprint}]`);
  });

  it('a replay with the same key returns the same token without regenerating again', async () => {
    const old = new Secret(fake.addToken({}));
    const first = await api.regenerate(old, 'key-replay');
    const second = await api.regenerate(old, 'key-replay');
    expect(second.token.equals(first.token)).toBe(true);
    expect(second.id).toBe(first.id);
    expect(fake.regenerateCount).toBe(1);
  });

  it('the same key with another bearer is a conflict (422)', async () => {
    const a = new Secret(fake.addToken({}));
    const b = new Secret(fake.addToken({}));
    await api.regenerate(a, 'key-shared');
    const err = await rejection(api.regenerate(b, 'key-shared'));
    expect(err.kind).toBe('conflict');
    expect(err.status).toBe(422);
    expect(err.message).toContain(b.fingerprint);
    expect(fake.isLive(b.reveal())).toBe(true);
    expectNoToken(err, a.reveal(), b.reveal());
  });

  it('a dead bearer is invalid-token', async () => {
    const old = new Secret(fake.addToken({}));
    await api.regenerate(old, 'k1');
    const err = await rejection(api.regenerate(old, 'k2'));
    expect(err.kind).toBe('invalid-token');
  });

  it('carries tokens with quote, backslash, apostrophe and dollar characters intact', async () => {
    fake.tokenFactory = () => `ctx_"a\\b'c$d\`e ${Math.random().toString(36).slice(2, 10)}`;
    const old = fake.addToken({});
    const res = await api.regenerate(new Secret(old), 'key-odd');
    expect(res.token.reveal()).toBe(fake.liveTokens()[0]!.token);
    expect(res.token.reveal()).toMatch(/^ctx_"a\\b'c\$d`e /);
    expect((await api.inspect(res.token)).id).toBe(res.id);
  });

  it('refuses an unusable Idempotency-Key before calling', async () => {
    const old = new Secret(fake.addToken({}));
    for (const key of ['', 'has space', 'x'.repeat(256), 'new\nline']) {
      expect((await rejection(api.regenerate(old, key))).kind).toBe('permanent');
    }
    expect(fake.requests).toHaveLength(0);
  });
});

describe('what goes on the wire', () => {
  it('sends the bearer, Accept, the MCP User-Agent and the Idempotency-Key', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
      res.end(req.method === 'POST' ? '{"token":"ctx_new","id":"t2","created_at":"2025-01-01T00:00:00Z"}' : '{"id":"t1","role":"editor"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = createCertorixProvider({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
    try {
      await p.inspect(new Secret('ctx_wire_check'));
      await p.regenerate(new Secret('ctx_wire_check'), 'key-wire');
    } finally {
      await p.close();
      server.close();
    }
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const h of seen) {
      expect(h.authorization).toBe('Bearer ctx_wire_check');
      expect(h.accept).toBe('application/json');
      expect(h['user-agent']).toBe(`mcp-token-rotator/${pkg.version} (MCP)`);
    }
    expect(seen[0]!['idempotency-key']).toBeUndefined();
    expect(seen[1]!['idempotency-key']).toBe('key-wire');
  });

  it('the fake sees our MCP User-Agent on every call', async () => {
    const old = new Secret(fake.addToken({}));
    await api.inspect(old);
    await api.regenerate(old, 'k');
    expect(fake.requests.map((r) => r.userAgent)).toEqual([defaultUserAgent(), defaultUserAgent()]);
    expect(defaultUserAgent()).toMatch(/^mcp-token-rotator\/\d+\.\d+\.\d+\S* \(MCP\)$/);
    expect(fake.requests[1]).toMatchObject({ idempotencyKey: 'k', bearerFingerprint: old.fingerprint });
  });

  it('a custom User-Agent keeps the MCP marker', async () => {
    const token = new Secret(fake.addToken({}));
    const p = createCertorixProvider({ apiUrl: fake.url, userAgent: 'acme-wrapper/2' });
    try {
      await p.inspect(token);
    } finally {
      await p.close();
    }
    expect(fake.requests[0]!.userAgent).toBe('acme-wrapper/2 (MCP)');
  });

  it('keeps an API base path', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id":"t1","role":"editor"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = createCertorixProvider({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api//` });
    try {
      await p.inspect(new Secret('ctx_base_path'));
    } finally {
      await p.close();
      server.close();
    }
    expect(seen).toEqual(['/api/v1/token']);
  });

  it('refuses plain http to anything but loopback before sending anything', () => {
    for (const apiUrl of ['http://api.certorix.com', 'http://192.168.1.10:8080', 'ftp://127.0.0.1']) {
      expect(() => createCertorixProvider({ apiUrl })).toThrow(expect.objectContaining({ code: 'E_INSECURE_URL' }));
    }
  });
});

describe('classification of failures', () => {
  type Case = { name: string; fault: Parameters<FakeCertorix['fault']>[1]; kind: ApiError['kind']; status?: number; retryAfterMs?: number };
  const cases: Case[] = [
    { name: '429 with Retry-After seconds', fault: { kind: 'status', status: 429, retryAfter: '7' }, kind: 'transient', status: 429, retryAfterMs: 7000 },
    { name: '429 without Retry-After', fault: { kind: 'status', status: 429 }, kind: 'transient', status: 429 },
    { name: '503 with Retry-After', fault: { kind: 'status', status: 503, retryAfter: '2' }, kind: 'transient', status: 503, retryAfterMs: 2000 },
    { name: '500', fault: { kind: 'status', status: 500 }, kind: 'transient', status: 500 },
    { name: '502', fault: { kind: 'status', status: 502 }, kind: 'transient', status: 502 },
    { name: '504 with an HTML body', fault: { kind: 'status', status: 504, body: '<html>gateway</html>' }, kind: 'transient', status: 504 },
    { name: '408', fault: { kind: 'status', status: 408 }, kind: 'transient', status: 408 },
    { name: '401', fault: { kind: 'status', status: 401 }, kind: 'invalid-token', status: 401 },
    { name: '403', fault: { kind: 'status', status: 403 }, kind: 'forbidden', status: 403 },
    { name: '422', fault: { kind: 'status', status: 422 }, kind: 'conflict', status: 422 },
    { name: '400', fault: { kind: 'status', status: 400 }, kind: 'permanent', status: 400 },
    { name: '404', fault: { kind: 'status', status: 404 }, kind: 'permanent', status: 404 },
    { name: '301 (never followed)', fault: { kind: 'status', status: 301 }, kind: 'permanent', status: 301 },
    { name: 'malformed 2xx (not JSON)', fault: { kind: 'malformed' }, kind: 'transient' },
    { name: '2xx JSON with missing fields', fault: { kind: 'status', status: 201, body: '{"id":"x"}' }, kind: 'transient' },
    { name: '2xx JSON with wrong types', fault: { kind: 'status', status: 200, body: '{"id":1,"role":null,"token":5}' }, kind: 'transient' },
    { name: '2xx JSON that is not an object', fault: { kind: 'status', status: 200, body: '[]' }, kind: 'transient' },
    { name: '2xx with a bad created_at', fault: { kind: 'status', status: 200, body: '{"id":"x","role":"editor","token":"ctx_y","created_at":"yesterday"}' }, kind: 'transient' },
    { name: 'reset before acting', fault: { kind: 'reset-before' }, kind: 'transient' },
    { name: 'reset after acting', fault: { kind: 'reset-after' }, kind: 'transient' },
  ];

  for (const op of ['inspect', 'regenerate'] as const) {
    for (const c of cases) {
      it(`${op}: ${c.name} -> ${c.kind}`, async () => {
        const token = fake.addToken({});
        fake.fault({}, c.fault);
        const secret = new Secret(token);
        const err = await rejection(op === 'inspect' ? api.inspect(secret) : api.regenerate(secret, 'key-c'));
        expect(err.kind).toBe(c.kind);
        expect(err.transient).toBe(c.kind === 'transient');
        if (c.status !== undefined) expect(err.status).toBe(c.status);
        expect(err.retryAfterMs).toBe(c.retryAfterMs);
        expect(err.message).toContain(`token ${secret.fingerprint}`);
        expect(err.hint).toBeTruthy();
        expectNoToken(err, token, ...fake.all().map((t) => t.token));
      });
    }
  }

  it('parses an HTTP-date Retry-After', async () => {
    const token = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'status', status: 429, retryAfter: new Date(Date.now() + 60_000).toUTCString() });
    const err = await rejection(api.inspect(token));
    expect(err.retryAfterMs).toBeGreaterThan(55_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('a hang is transient once timeoutMs passes', async () => {
    const p = createCertorixProvider({ apiUrl: fake.url, timeoutMs: 300 });
    const token = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'hang' });
    const t0 = Date.now();
    try {
      const err = await rejection(p.inspect(token));
      expect(err.kind).toBe('transient');
      expect(err.message).toMatch(/300 ms/);
      expect(Date.now() - t0).toBeLessThan(2000);
      expectNoToken(err, token.reveal());
    } finally {
      await p.close();
    }
  });

  it('a slow body after prompt headers still times out', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"id":');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = createCertorixProvider({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 300 });
    try {
      expect((await rejection(p.inspect(new Secret('ctx_slow_body')))).kind).toBe('transient');
    } finally {
      await p.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('a delay shorter than the timeout succeeds', async () => {
    const token = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'delay', ms: 100 });
    expect((await api.inspect(token)).role).toBe('editor');
  });

  it('connection refused is transient', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const p = createCertorixProvider({ apiUrl: `http://127.0.0.1:${port}` });
    try {
      const err = await rejection(p.inspect(new Secret('ctx_refused_conn_0001')));
      expect(err.kind).toBe('transient');
      expect(err.message).toMatch(/ECONNREFUSED/);
    } finally {
      await p.close();
    }
  });

  it('a server that echoes the token in its error has it scrubbed from the message', async () => {
    const token = fake.addToken({});
    fake.fault({}, { kind: 'status', status: 403, body: JSON.stringify({ error: `token ${token} lacks scope` }) });
    const err = await rejection(api.inspect(new Secret(token)));
    expect(err.kind).toBe('forbidden');
    expect(err.message).toMatch(/lacks scope/);
    expectNoToken(err, token);
  });

  it.each([['a line break', 'ctx_bad\nvalue'], ['a "${" reference', 'ctx_bad${value}']])(
    'a 201 whose new token holds %s is a permanent failure (every replay would return it again)',
    async (_n, minted) => {
      const token = new Secret(fake.addToken({}));
      fake.fault({}, { kind: 'status', status: 201, body: JSON.stringify({ token: minted, id: 'x' }) });
      const err = await rejection(api.regenerate(token, 'k'));
      expect(err.kind).toBe('permanent');
      expect(err.hint).toMatch(/set-token/);
      expectNoToken(err, minted, 'ctx_bad');
    },
  );

  it('a token that cannot go in a header is refused without a request', async () => {
    const err = await rejection(api.inspect(new Secret('ctx_line\r\nX-Evil: 1')));
    expect(err.kind).toBe('permanent');
    expectNoToken(err, 'ctx_line');
    expect(fake.requests).toHaveLength(0);
  });

  it("the caller's abort is passed through, not turned into a retryable error", async () => {
    const token = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'hang' });
    const ac = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => ac.abort(reason), 50);
    await expect(api.inspect(token, { signal: ac.signal })).rejects.toBe(reason);
    await expect(api.inspect(token, { signal: ac.signal })).rejects.toBe(reason);
  });

  it('close() does not wait for a hung call', async () => {
    const token = new Secret(fake.addToken({}));
    const p = createCertorixProvider({ apiUrl: fake.url, timeoutMs: 60_000 });
    fake.fault({}, { kind: 'hang' });
    const pending = p.inspect(token).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await p.close();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await pending).toBeInstanceOf(ApiError);
    expect((await rejection(p.inspect(token))).kind).toBe('permanent');
  });
});

describe('TLS', () => {
  let dir = '';
  let key: Buffer | undefined;
  let cert: Buffer | undefined;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tls-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      ], { stdio: 'ignore' });
      key = readFileSync(path.join(dir, 'key.pem'));
      cert = readFileSync(path.join(dir, 'cert.pem'));
    } catch {
      // no openssl: the TLS cases below are skipped
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function tlsServer(maxVersion: 'TLSv1.2' | 'TLSv1.3') {
    let requests = 0;
    const server = createHttpsServer({ key, cert, minVersion: 'TLSv1.2', maxVersion }, (_req, res) => {
      requests++;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests, close: () => new Promise((r) => server.close(r)) };
  }

  it('refuses a server that offers only TLS 1.2, without sending the token', async (ctx) => {
    if (!key) ctx.skip();
    const s = await tlsServer('TLSv1.2');
    const p = createCertorixProvider({ apiUrl: s.url, timeoutMs: 3000 });
    try {
      const err = await rejection(p.inspect(new Secret('ctx_tls12_check_token')));
      expect(err.kind).toBe('permanent');
      expect(err.message).toMatch(/TLS 1\.3/);
      expect(s.requests()).toBe(0);
      expectNoToken(err, 'ctx_tls12_check_token');
    } finally {
      await p.close();
      await s.close();
    }
  });

  it('refuses an untrusted certificate as permanent', async (ctx) => {
    if (!key) ctx.skip();
    const s = await tlsServer('TLSv1.3');
    const p = createCertorixProvider({ apiUrl: s.url, timeoutMs: 3000 });
    try {
      const err = await rejection(p.inspect(new Secret('ctx_tls13_check_token')));
      expect(err.kind).toBe('permanent');
      expect(err.message).toMatch(/certificate/);
      expect(s.requests()).toBe(0);
    } finally {
      await p.close();
      await s.close();
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  it.each([
    ['0', 0],
    ['120', 120_000],
    [' 5 ', 5000],
    ['Tue, 01 Jan 2030 00:00:30 GMT', 30_000],
    ['Mon, 31 Dec 2029 23:59:00 GMT', 0],
    ['-1', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ] as const)('%j -> %j', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it('takes the first of repeated headers', () => {
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000);
  });
});
