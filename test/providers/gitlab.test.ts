import { inspect as utilInspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGitLabClient } from '../../src/providers/gitlab/api.js';
import { gitlab, gitlabTokenPage } from '../../src/providers/gitlab/index.js';
import { gitlabRotateExpiry } from '../../src/providers/gitlab/lifetime.js';
import type { ProviderClient } from '../../src/providers/types.js';
import { ApiError, RotatorError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { GITLAB_ROTATE_PATH, startFakeGitlab, type FakeGitlab } from '../fake/gitlab.js';

describe('gitlabRotateExpiry: today + the old lifetime, capped at 365 days', () => {
  const now = new Date('2026-12-03T08:00:00Z');
  it.each([
    ['90-day token', { createdAt: '2026-09-01T10:30:00Z', expiresAt: '2026-11-30' }, '2027-03-03'],
    ['ISO expiry as recorded', { createdAt: '2026-09-01T10:30:00.000Z', expiresAt: '2026-11-30T00:00:00.000Z' }, '2027-03-03'],
    ['a year and more is capped', { createdAt: '2024-01-01T00:00:00Z', expiresAt: '2026-01-01' }, '2027-12-03'],
    ['exactly 365 days', { createdAt: '2026-01-01T00:00:00Z', expiresAt: '2027-01-01' }, '2027-12-03'],
    ['same-day token: at least one day', { createdAt: '2026-11-30T01:00:00Z', expiresAt: '2026-11-30' }, '2026-12-04'],
    ['no expiry: rotate without one', { createdAt: '2026-01-01T00:00:00Z', expiresAt: null }, undefined],
    ['unknown creation: the cap', { expiresAt: '2027-01-01' }, '2027-12-03'],
    ['garbage expiry: none sent', { createdAt: '2026-01-01T00:00:00Z', expiresAt: 'soon' }, undefined],
  ])('%s', (_name, previous, expected) => {
    expect(gitlabRotateExpiry(previous, now)).toBe(expected);
  });
});

describe('gitlab module: recognition and pages', () => {
  const entry = (env: Record<string, string>, kind: 'mcp' | 'shell' = 'mcp') => ({ kind, server: kind === 'mcp' ? 'gitlab' : '', args: [], env: new Map(Object.entries(env)) });
  it('claims GITLAB_PERSONAL_ACCESS_TOKEN with the entry\'s own GITLAB_API_URL, nothing else', () => {
    expect(gitlab.claim(entry({ GITLAB_PERSONAL_ACCESS_TOKEN: 'x', GITLAB_API_URL: 'https://git.example.com/api/v4' }), {})).toEqual({
      envVars: ['GITLAB_PERSONAL_ACCESS_TOKEN'],
      bearer: false,
      apiUrl: 'https://git.example.com/api/v4',
    });
    expect(gitlab.claim(entry({ GITLAB_TOKEN: 'glpat-abc' }), {})).toBeNull();
    expect(gitlab.claim(entry({ GITLAB_PERSONAL_ACCESS_TOKEN: 'x' }, 'shell'), {})).toEqual({ envVars: ['GITLAB_PERSONAL_ACCESS_TOKEN'], bearer: false });
  });
  it('the entry\'s base wins over settings; the token page is the instance\'s', () => {
    const settings = { apiUrl: 'https://api.certorix.com', apiUrls: { gitlab: 'https://other.example/api/v4' } };
    expect(gitlab.apiBase({ entryApiUrl: 'https://git.example.com/api/v4', settings })).toBe('https://git.example.com/api/v4');
    expect(gitlab.apiBase({ entryApiUrl: null, settings: { apiUrl: 'x' } })).toBe('https://gitlab.com/api/v4');
    expect(gitlabTokenPage('https://gitlab.com/api/v4')).toBe('https://gitlab.com/-/user_settings/personal_access_tokens');
    expect(gitlabTokenPage('https://example.com/gitlab/api/v4/')).toBe('https://example.com/gitlab/-/user_settings/personal_access_tokens');
  });
});

describe('gitlab client against the fake', () => {
  let fake: FakeGitlab;
  let api: ProviderClient;
  beforeEach(async () => {
    fake = await startFakeGitlab();
    api = createGitLabClient({ apiUrl: fake.url, timeoutMs: 2000 });
  });
  afterEach(async () => {
    await api.close();
    await fake.close();
  });

  const failure = async (p: Promise<unknown>, ...tokens: string[]): Promise<ApiError> => {
    const e = await p.then(
      () => {
        throw new Error('expected a failure');
      },
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApiError);
    for (const view of [(e as Error).message, String((e as RotatorError).hint), utilInspect(e, { depth: 4 })]) for (const t of tokens) expect(view).not.toContain(t);
    return e as ApiError;
  };

  it('inspects: scopes, created, expiry as the instant it dies; sent as Bearer with an MCP User-Agent', async () => {
    const t = fake.addToken({ createdAt: '2026-09-01T10:30:00.000Z', expiresAt: '2027-03-01', scopes: ['api', 'read_user'] });
    const info = await api.inspect(new Secret(t));
    expect(info).toMatchObject({ role: 'api, read_user', createdAt: '2026-09-01T10:30:00.000Z', expiresAt: '2027-03-01T00:00:00.000Z', scopes: ['api', 'read_user'] });
    expect(fake.requests[0]).toMatchObject({ credentialHeader: 'authorization', userAgent: expect.stringContaining('MCP') });
  });

  it('rotates keeping the lifetime: one POST, the new token live, the old revoked', async () => {
    const t = fake.addToken({ ageDays: 80, expiresInDays: 10 });
    const rec = fake.get(t)!;
    const r = await api.regenerate!(new Secret(t), 'unused', { previous: { createdAt: rec.createdAt, expiresAt: rec.expiresAt } });
    expect(fake.isActive(r.token.reveal())).toBe(true);
    expect(fake.isActive(t)).toBe(false);
    expect(fake.rotateCalls()).toBe(1);
    const sent = JSON.parse(fake.requests.find((q) => q.path === GITLAB_ROTATE_PATH)!.body) as { expires_at: string };
    const days = Math.round((Date.parse(sent.expires_at) - Date.parse(new Date().toISOString().slice(0, 10))) / 86_400_000);
    expect(days).toBe(90);
    expect(r.expiresAt).toBe(`${sent.expires_at}T00:00:00.000Z`);
  });

  it('without recorded dates it asks GET /self first; a token without expiry rotates without expires_at', async () => {
    const t = fake.addToken({ expiresAt: null });
    await api.regenerate!(new Secret(t), 'k');
    expect(fake.requests.map((q) => `${q.method} ${q.body}`)).toEqual(['GET ', 'POST {}']);
  });

  it('a record without created_at was never inspected: its null expiry is asked, not taken as "never"', async () => {
    const t = fake.addToken({ ageDays: 20, expiresInDays: 10 });
    await api.regenerate!(new Secret(t), 'k', { previous: { createdAt: null, expiresAt: null } });
    const sent = JSON.parse(fake.requests.find((q) => q.path === GITLAB_ROTATE_PATH)!.body) as { expires_at?: string };
    expect(sent.expires_at).toBe(new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10));
  });

  it('403 insufficient_scope names the scopes to add and the token page; nothing rotated', async () => {
    const t = fake.addToken({ scopes: ['read_api'] });
    const e = await failure(api.regenerate!(new Secret(t), 'k', { previous: { createdAt: null, expiresAt: null } }), t);
    expect(e.kind).toBe('forbidden');
    expect(e.message).toContain('`self_rotate`');
    expect(e.hint).toContain('/-/user_settings/personal_access_tokens');
    expect(e.hint).toContain('set-token --fingerprint');
    expect(fake.isActive(t)).toBe(true);
  });

  it('401 for revoked and expired tokens is invalid-token with the page and set-token', async () => {
    const t = fake.addToken();
    fake.revoke(t);
    const e = await failure(api.inspect(new Secret(t)), t);
    expect(e.kind).toBe('invalid-token');
    expect(e.message).toContain('Token was revoked');
    expect(e.hint).toContain(`${new URL(fake.url).origin}/-/user_settings/personal_access_tokens`);
    const old = fake.addToken({ expiresInDays: -2 });
    expect((await failure(api.inspect(new Secret(old)), old)).message).toContain('Token has expired');
  });

  it('a lost answer is one POST and a transient error that says it is not repeated', async () => {
    const t = fake.addToken();
    fake.fault({ path: GITLAB_ROTATE_PATH }, { kind: 'reset-after' });
    const e = await failure(api.regenerate!(new Secret(t), 'k', { previous: { createdAt: null, expiresAt: null } }), t);
    expect(e.kind).toBe('transient');
    expect(e.notSent).toBe(false);
    expect(e.hint).toContain('not repeated');
    expect(fake.rotateCalls()).toBe(1);
    expect(fake.rotateCount).toBe(1);
  });

  it('a failure of the GET before the rotate is notSent: the rotate never left', async () => {
    const t = fake.addToken();
    fake.fault({ method: 'GET' }, { kind: 'reset-after' });
    const e = await failure(api.regenerate!(new Secret(t), 'k'), t);
    expect([e.kind, e.notSent]).toEqual(['transient', true]);
    expect(fake.rotateCalls()).toBe(0);
    expect(fake.isActive(t)).toBe(true);
  });

  it('429 and 5xx are transient with Retry-After; a 2xx that is not JSON is transient', async () => {
    const t = fake.addToken();
    fake.fault({ method: 'GET' }, { kind: 'status', status: 429, retryAfter: '7' });
    const e = await failure(api.inspect(new Secret(t)), t);
    expect([e.kind, e.retryAfterMs]).toEqual(['transient', 7000]);
    fake.fault({ method: 'GET' }, { kind: 'malformed' });
    expect((await failure(api.inspect(new Secret(t)), t)).kind).toBe('transient');
  });

  it('never sends a token over plain http to a non-loopback host', () => {
    expect(() => createGitLabClient({ apiUrl: 'http://gitlab.example.com/api/v4' })).toThrow(/GitLab API URL|plain http/);
    try {
      createGitLabClient({ apiUrl: 'http://gitlab.example.com/api/v4' });
    } catch (e) {
      expect((e as RotatorError).hint).toContain('GITLAB_API_URL');
    }
  });
});
