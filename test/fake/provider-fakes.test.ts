import { afterEach, describe, expect, it } from 'vitest';
import { GITLAB_ROTATE_PATH, GITLAB_SELF_PATH, startFakeGitlab, type FakeGitlab } from './gitlab.js';
import { CLOUDFLARE_VERIFY_PATH, cloudflareRollPath, startFakeCloudflare, type FakeCloudflare } from './cloudflare.js';
import { fingerprint } from './http-fake.js';

const UA = 'fake-test/1.0 (MCP)';
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function gitlab(): Promise<FakeGitlab> {
  const f = await startFakeGitlab();
  closers.push(() => f.close());
  return f;
}
async function cloudflare(): Promise<FakeCloudflare> {
  const f = await startFakeCloudflare();
  closers.push(() => f.close());
  return f;
}

async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: init.method ?? 'GET', headers: { 'user-agent': UA, ...init.headers }, ...(init.body !== undefined ? { body: init.body } : {}), signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const origin = (f: { url: string }): string => new URL(f.url).origin;

describe('fake gitlab', () => {
  const self = (f: FakeGitlab, token: string) => call(origin(f) + GITLAB_SELF_PATH, { headers: { 'private-token': token } });
  const rotate = (f: FakeGitlab, token: string, body?: unknown) =>
    call(origin(f) + GITLAB_ROTATE_PATH, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  it('describes a token in GitLab shape and records the request by fingerprint', async () => {
    const f = await gitlab();
    const t = f.addToken({ createdAt: '2026-01-01T00:00:00.000Z', expiresAt: '2027-01-01', scopes: ['api'] });
    const r = await self(f, t);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ revoked: false, active: true, created_at: '2026-01-01T00:00:00.000Z', expires_at: '2027-01-01', scopes: ['api'] });
    expect(typeof r.json.id).toBe('number');
    expect(f.requests).toEqual([expect.objectContaining({ method: 'GET', path: GITLAB_SELF_PATH, tokenFingerprint: fingerprint(t), credentialHeader: 'private-token', status: 200 })]);
    expect(JSON.stringify(f.requests)).not.toContain(t);
  });

  it('rotates: new token with the asked expiry, old one revoked at once; no expires_at gives one week', async () => {
    const f = await gitlab();
    const t = f.addToken();
    const r = await rotate(f, t, { expires_at: '2099-01-01' });
    expect(r.status).toBe(400);
    const ok = await rotate(f, t, { expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10) });
    expect(ok.status).toBe(200);
    const fresh = ok.json.token as string;
    expect(fresh).toMatch(/^glpat-/);
    expect((await self(f, t)).json).toEqual({ error: 'invalid_token', error_description: 'Token was revoked. You have to re-authenticate.' });
    expect((await self(f, fresh)).status).toBe(200);
    const again = await rotate(f, fresh);
    expect(again.json.expires_at).toBe(new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10));
    expect(f.rotateCount).toBe(2);
  });

  it('a rotate repeated with the old token revokes the new one (GitLab issue 524639)', async () => {
    const f = await gitlab();
    const t = f.addToken();
    const first = await rotate(f, t);
    const fresh = first.json.token as string;
    expect(f.isActive(fresh)).toBe(true);
    const repeat = await rotate(f, t);
    expect(repeat.status).toBe(401);
    expect(f.isActive(fresh)).toBe(false);
    expect(f.rotateCount).toBe(1);
    expect(f.rotateCalls()).toBe(2);
  });

  it('lost answer: the rotation happens, the connection dies', async () => {
    const f = await gitlab();
    const t = f.addToken();
    f.fault({ path: GITLAB_ROTATE_PATH }, { kind: 'reset-after' });
    await expect(rotate(f, t)).rejects.toThrow();
    expect(f.isActive(t)).toBe(false);
    expect(f.rotateCount).toBe(1);
    expect(f.all().filter((x) => !x.revoked)).toHaveLength(1);
  });

  it('refuses missing scope (403 insufficient_scope), unknown (401), expired (401) tokens and passes injected 429s', async () => {
    const f = await gitlab();
    const ro = f.addToken({ scopes: ['read_api'] });
    const r = await rotate(f, ro);
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: 'insufficient_scope', scope: 'api self_rotate' });
    expect(f.isActive(ro)).toBe(true);
    const sr = f.addToken({ scopes: ['read_api', 'self_rotate'] });
    expect((await rotate(f, sr)).status).toBe(200);
    expect(await self(f, 'glpat-nope')).toEqual({ status: 401, json: { message: '401 Unauthorized' } });
    const old = f.addToken({ expiresInDays: -1 });
    expect((await self(f, old)).json).toMatchObject({ error_description: 'Token has expired.' });
    const live = f.addToken();
    f.fault({ method: 'GET' }, { kind: 'status', status: 429, retryAfter: '3' });
    expect((await self(f, live)).status).toBe(429);
    expect((await self(f, live)).status).toBe(200);
  });
});

describe('fake cloudflare', () => {
  const verify = (f: FakeCloudflare, token: string) => call(origin(f) + CLOUDFLARE_VERIFY_PATH, { headers: { authorization: `Bearer ${token}` } });
  const roll = (f: FakeCloudflare, token: string, id: string) =>
    call(origin(f) + cloudflareRollPath(id), { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });

  it('verifies in the v4 envelope and rolls: same id, new value, old value dead', async () => {
    const f = await cloudflare();
    const t = f.addToken({ expiresOn: '2030-01-01T00:00:00Z' });
    const v = await verify(f, t);
    expect(v.status).toBe(200);
    expect(v.json).toMatchObject({ success: true, errors: [], result: { status: 'active', expires_on: '2030-01-01T00:00:00Z' } });
    const id = (v.json.result as { id: string }).id;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const r = await roll(f, t, id);
    expect(r.status).toBe(200);
    expect(r.json.success).toBe(true);
    const fresh = r.json.result as string;
    expect(fresh.length).toBeGreaterThanOrEqual(40);
    expect(await verify(f, t)).toEqual({ status: 401, json: { success: false, errors: [{ code: 1000, message: 'Invalid API Token' }], messages: [], result: null } });
    expect(((await verify(f, fresh)).json.result as { id: string }).id).toBe(id);
    expect(f.requests.map((q) => q.tokenFingerprint)).toEqual([fingerprint(t), fingerprint(t), fingerprint(t), fingerprint(fresh)]);
  });

  it('403 without "API Tokens Write", expired status, lost answer', async () => {
    const f = await cloudflare();
    const ro = f.addToken({ canWriteTokens: false });
    const id = ((await verify(f, ro)).json.result as { id: string }).id;
    const r = await roll(f, ro, id);
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ success: false, errors: [{ code: 10000, message: 'Authentication error' }] });
    expect(f.isLive(ro)).toBe(true);
    const old = f.addToken({ expiresInDays: -1 });
    expect(((await verify(f, old)).json.result as { status: string }).status).toBe('expired');
    const t = f.addToken();
    const tid = ((await verify(f, t)).json.result as { id: string }).id;
    f.fault({ method: 'PUT' }, { kind: 'reset-after' });
    await expect(roll(f, t, tid)).rejects.toThrow();
    expect(f.isLive(t)).toBe(false);
    expect(f.rollCount).toBe(1);
  });
});
