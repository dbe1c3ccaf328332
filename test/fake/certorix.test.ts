import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from './certorix.js';

const UA = 'fake-test/1.0 (MCP)';

let fake: FakeCertorix;
beforeEach(async () => {
  fake = await startFakeCertorix();
});
afterEach(async () => {
  await fake.close();
});

async function call(
  method: 'GET' | 'POST',
  p: string,
  opts: { token?: string; key?: string; ua?: string | null; timeoutMs?: number } = {},
): Promise<{ status: number; json: unknown; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.key !== undefined) headers['idempotency-key'] = opts.key;
  if (opts.ua !== null) headers['user-agent'] = opts.ua ?? UA;
  const res = await fetch(fake.url + p, {
    method,
    headers,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

const inspect = (token?: string, ua?: string | null) => call('GET', '/v1/token', { ...(token !== undefined ? { token } : {}), ...(ua !== undefined ? { ua } : {}) });
const regenerate = (token: string | undefined, key?: string) =>
  call('POST', '/v1/token/regenerate', { ...(token !== undefined ? { token } : {}), ...(key !== undefined ? { key } : {}) });

describe('fake certorix: GET /v1/token', () => {
  it('describes a live token', async () => {
    const token = fake.addToken({ email: 'ana@example.com', role: 'admin', ageDays: 100 });
    const r = await inspect(token);
    expect(r.status).toBe(200);
    const body = r.json as Record<string, string>;
    expect(body).toMatchObject({ role: 'admin', email: 'ana@example.com' });
    expect(body.id).toMatch(/^tok_/);
    const ageDays = (Date.now() - Date.parse(body.created_at!)) / 86_400_000;
    expect(ageDays).toBeGreaterThan(99.9);
    expect(ageDays).toBeLessThan(100.1);
    expect(token).toMatch(/^ctx_[0-9A-Za-z]{40}$/);
  });

  it('answers 401 for missing, unknown and revoked tokens', async () => {
    expect((await inspect()).status).toBe(401);
    expect((await inspect('ctx_unknown')).status).toBe(401);
    const token = fake.addToken({});
    await regenerate(token, 'k1');
    const r = await inspect(token);
    expect(r.status).toBe(401);
    expect(r.json).toHaveProperty('error');
  });

  it('refuses a User-Agent without MCP with 400', async () => {
    const token = fake.addToken({});
    expect((await inspect(token, 'curl/8.0')).status).toBe(400);
    expect((await inspect(token, null)).status).toBe(400);
  });

  it('answers 404 and 405 off the API surface', async () => {
    expect((await call('GET', '/v1/nope')).status).toBe(404);
    expect((await call('POST', '/v1/token')).status).toBe(405);
    expect((await call('GET', '/v1/token/regenerate')).status).toBe(405);
  });
});

describe('fake certorix: POST /v1/token/regenerate', () => {
  it('requires an Idempotency-Key', async () => {
    const token = fake.addToken({});
    expect((await regenerate(token)).status).toBe(400);
    expect(fake.isLive(token)).toBe(true);
  });

  it('revokes the old token at once and mints one with the same email and role', async () => {
    const old = fake.addToken({ email: 'bo@example.com', role: 'viewer', ageDays: 95 });
    fake.now = () => new Date('2030-01-02T03:04:05.000Z');
    const r = await regenerate(old, 'key-1');
    expect(r.status).toBe(201);
    const body = r.json as { token: string; id: string; created_at: string };
    expect(body.created_at).toBe('2030-01-02T03:04:05.000Z');
    expect(fake.isLive(old)).toBe(false);
    expect(fake.isLive(body.token)).toBe(true);
    expect(fake.regenerateCount).toBe(1);
    const fresh = fake.liveTokens('bo@example.com');
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toMatchObject({ token: body.token, id: body.id, role: 'viewer', email: 'bo@example.com', live: true });
    expect(fake.all()).toHaveLength(2);
  });

  it('replays the first response for the same key and bearer, even though the bearer is revoked', async () => {
    const old = fake.addToken({});
    const first = await regenerate(old, 'key-r');
    const again = await regenerate(old, 'key-r');
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(fake.regenerateCount).toBe(1);
  });

  it('answers 422 for the same key with another bearer, and acts on nothing', async () => {
    const a = fake.addToken({});
    const b = fake.addToken({});
    await regenerate(a, 'shared');
    const r = await regenerate(b, 'shared');
    expect(r.status).toBe(422);
    expect(fake.isLive(b)).toBe(true);
    expect(fake.regenerateCount).toBe(1);
  });

  it('forgets keys after 24 hours', async () => {
    const old = fake.addToken({});
    const t0 = Date.now();
    fake.now = () => new Date(t0);
    await regenerate(old, 'key-old');
    fake.now = () => new Date(t0 + 23 * 3600_000);
    expect((await regenerate(old, 'key-old')).status).toBe(201);
    fake.now = () => new Date(t0 + 25 * 3600_000);
    expect((await regenerate(old, 'key-old')).status).toBe(401);
    expect(fake.regenerateCount).toBe(1);
  });

  it('answers 401 for a dead bearer with a new key', async () => {
    const old = fake.addToken({});
    await regenerate(old, 'k1');
    expect((await regenerate(old, 'k2')).status).toBe(401);
    expect((await regenerate(undefined, 'k3')).status).toBe(401);
    expect(fake.regenerateCount).toBe(1);
  });

  it('uses the swapped-in tokenFactory for awkward token values', async () => {
    fake.tokenFactory = () => `ctx_"q\\b'$HOME ${Math.random().toString(36).slice(2)}`;
    const old = fake.addToken({});
    expect(old).toContain('"');
    const r = await regenerate(old, 'k');
    const minted = (r.json as { token: string }).token;
    expect(minted).toMatch(/^ctx_"q\\b'\$HOME /);
    expect((await inspect(minted)).status).toBe(200);
  });
});

describe('fake certorix: request log', () => {
  it('records fingerprints, keys and user agents, never token values', async () => {
    const token = fake.addToken({});
    await inspect(token);
    const r = await regenerate(token, 'key-log');
    const minted = (r.json as { token: string }).token;
    expect(fake.requests).toEqual([
      { method: 'GET', path: '/v1/token', userAgent: UA, bearerFingerprint: fp(token), status: 200 },
      { method: 'POST', path: '/v1/token/regenerate', idempotencyKey: 'key-log', userAgent: UA, bearerFingerprint: fp(token), status: 201 },
    ]);
    const dump = JSON.stringify(fake.requests);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(minted);
  });
});

describe('fake certorix: faults', () => {
  it('status faults reply with the status and Retry-After, then run out', async () => {
    const token = fake.addToken({});
    fake.fault({ path: '/v1/token' }, { kind: 'status', status: 429, retryAfter: '3' }, 2);
    const r1 = await inspect(token);
    expect(r1.status).toBe(429);
    expect(r1.headers.get('retry-after')).toBe('3');
    expect((await inspect(token)).status).toBe(429);
    expect((await inspect(token)).status).toBe(200);
  });

  it('matches on method and path', async () => {
    const token = fake.addToken({});
    fake.fault({ method: 'post', path: '/v1/token/regenerate' }, { kind: 'status', status: 503 });
    expect((await inspect(token)).status).toBe(200);
    expect((await regenerate(token, 'k')).status).toBe(503);
    expect(fake.isLive(token)).toBe(true);
    expect((await regenerate(token, 'k')).status).toBe(201);
  });

  it('status faults may carry a custom body', async () => {
    const token = fake.addToken({});
    fake.fault({}, { kind: 'status', status: 200, body: '{"id":42}' });
    const r = await inspect(token);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ id: 42 });
  });

  it('malformed answers 2xx with a body that is not JSON, without acting', async () => {
    const token = fake.addToken({});
    fake.fault({}, { kind: 'malformed' }, 2);
    const g = await inspect(token);
    expect(g.status).toBe(200);
    expect(g.json).toBeUndefined();
    const p = await regenerate(token, 'k');
    expect(p.status).toBe(201);
    expect(p.json).toBeUndefined();
    expect(fake.regenerateCount).toBe(0);
    expect(fake.isLive(token)).toBe(true);
  });

  it('reset-before drops the connection without acting', async () => {
    const token = fake.addToken({});
    fake.fault({ path: '/v1/token/regenerate' }, { kind: 'reset-before' });
    await expect(regenerate(token, 'k')).rejects.toThrow();
    expect(fake.isLive(token)).toBe(true);
    expect(fake.regenerateCount).toBe(0);
    expect(fake.requests.at(-1)?.status).toBe(0);
  });

  it('reset-after regenerates, then drops the connection (the lost response)', async () => {
    const token = fake.addToken({});
    fake.fault({ path: '/v1/token/regenerate' }, { kind: 'reset-after' });
    await expect(regenerate(token, 'k')).rejects.toThrow();
    expect(fake.isLive(token)).toBe(false);
    expect(fake.regenerateCount).toBe(1);
    const replay = await regenerate(token, 'k');
    expect(replay.status).toBe(201);
    expect((replay.json as { token: string }).token).toBe(fake.liveTokens()[0]?.token);
  });

  it('hang never answers, and close() still returns promptly', async () => {
    const token = fake.addToken({});
    fake.fault({}, { kind: 'hang' });
    await expect(call('GET', '/v1/token', { token, timeoutMs: 200 })).rejects.toThrow();
    const t0 = Date.now();
    fake.fault({}, { kind: 'hang' });
    const pending = fetch(`${fake.url}/v1/token`, { headers: { authorization: `Bearer ${token}`, 'user-agent': UA } }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await fake.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await pending;
  });

  it('delay and delayMs slow answers down', async () => {
    const token = fake.addToken({});
    fake.fault({}, { kind: 'delay', ms: 150 });
    let t0 = Date.now();
    expect((await inspect(token)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    fake.delayMs = 100;
    t0 = Date.now();
    expect((await inspect(token)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
  });
});

describe('fake certorix: serve.ts in its own process', () => {
  it('prints its URL, serves seeded tokens, can be steered, and exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'fake-serve-'));
    try {
      const root = path.resolve(import.meta.dirname, '../..');
      const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      await promisify(execFile)(process.execPath, [
        tsc,
        '--outDir', out,
        '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
        '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'),
        '--skipLibCheck', '--strict',
        path.join(root, 'test/fake/serve.ts'),
      ], { cwd: root });
      writeFileSync(path.join(out, 'package.json'), '{"type":"module"}');

      const seeded = 'ctx_seeded_value_for_the_spawn_test_0001';
      const child = spawn(process.execPath, [path.join(out, 'serve.js')], {
        env: { ...process.env, PORT: '0', FAKE_CERTORIX_SEED: JSON.stringify([{ token: seeded, role: 'editor', ageDays: 91 }, { role: 'viewer' }]) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const info = JSON.parse(line.toString().trim()) as { url: string; tokens: string[] };
      expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(info.tokens[0]).toBe(seeded);
      expect(info.tokens).toHaveLength(2);

      const get = (token: string) => fetch(`${info.url}/v1/token`, { headers: { authorization: `Bearer ${token}`, 'user-agent': UA } });
      expect((await get(seeded)).status).toBe(200);
      const faulted = await fetch(`${info.url}/_fake/fault`, {
        method: 'POST',
        body: JSON.stringify({ match: { path: '/v1/token' }, fault: { kind: 'status', status: 503 } }),
      });
      expect(faulted.status).toBe(200);
      expect((await get(seeded)).status).toBe(503);
      const state = (await (await fetch(`${info.url}/_fake/state`)).json()) as { regenerateCount: number; tokens: unknown[]; requests: unknown[] };
      expect(state.regenerateCount).toBe(0);
      expect(state.tokens).toHaveLength(2);
      expect(state.requests).toHaveLength(2);

      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

function fp(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}
