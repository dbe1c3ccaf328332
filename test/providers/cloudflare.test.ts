import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCloudflareClient } from '../../src/providers/cloudflare/api.js';
import { cloudflare } from '../../src/providers/cloudflare/index.js';
import type { ProviderClient } from '../../src/providers/types.js';
import { ApiError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startFakeCloudflare, type FakeCloudflare } from '../fake/cloudflare.js';

let fake: FakeCloudflare;
let api: ProviderClient;
beforeEach(async () => {
  fake = await startFakeCloudflare();
  api = createCloudflareClient({ apiUrl: fake.url, timeoutMs: 2000 });
});
afterEach(async () => {
  await api.close();
  await fake.close();
});

async function failure(p: Promise<unknown>, token: string): Promise<ApiError> {
  const e = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApiError);
  expect(`${(e as Error).message} ${(e as ApiError).hint}`).not.toContain(token);
  return e as ApiError;
}

describe('cloudflare module', () => {
  it('claims CLOUDFLARE_API_TOKEN only; base from settings/env else the default; the dashboard page', () => {
    const entry = (env: Record<string, string>) => ({ kind: 'mcp' as const, server: 'cf', args: [], env: new Map(Object.entries(env)) });
    expect(cloudflare.claim(entry({ CLOUDFLARE_API_TOKEN: 'x' }), {})).toEqual({ envVars: ['CLOUDFLARE_API_TOKEN'], bearer: false });
    expect(cloudflare.claim(entry({ CF_API_TOKEN: 'x' }), {})).toBeNull();
    expect(cloudflare.apiBase({ settings: { apiUrl: 'x' } })).toBe('https://api.cloudflare.com/client/v4');
    expect(cloudflare.apiBase({ settings: { apiUrl: 'x', apiUrls: { cloudflare: 'http://127.0.0.1:9/client/v4' } } })).toBe('http://127.0.0.1:9/client/v4');
    expect(cloudflare.tokenPage('')).toBe('https://dash.cloudflare.com/profile/api-tokens');
  });
});

describe('cloudflare client against the fake', () => {
  it('inspects: id, expiry, no creation date (age unknown)', async () => {
    const t = fake.addToken({ expiresOn: '2027-01-31T12:00:00Z' });
    const info = await api.inspect(new Secret(t));
    expect(info).toEqual({ id: fake.get(t)!.id, role: '', expiresAt: '2027-01-31T12:00:00.000Z' });
    expect((await api.inspect(new Secret(fake.addToken()))).expiresAt).toBeNull();
    expect(fake.requests.every((r) => r.credentialHeader === 'authorization' && r.userAgent?.includes('MCP'))).toBe(true);
  });

  it('rolls: verify then one PUT with {}; same id, new value live, old dead', async () => {
    const t = fake.addToken();
    const r = await api.regenerate!(new Secret(t), 'k');
    expect(r.id).toBe(fake.get(t)!.id);
    expect(fake.isLive(r.token.reveal())).toBe(true);
    expect(fake.isLive(t)).toBe(false);
    expect(fake.requests.map((q) => `${q.method} ${q.body}`)).toEqual(['GET ', 'PUT {}']);
  });

  it('403 without "API Tokens Write" says which permission to add, and where', async () => {
    const t = fake.addToken({ canWriteTokens: false });
    const e = await failure(api.regenerate!(new Secret(t), 'k'), t);
    expect(e.kind).toBe('forbidden');
    expect(e.message).toContain('"API Tokens Write"');
    expect(e.message).toContain('code 10000: Authentication error');
    expect(e.hint).toContain('https://dash.cloudflare.com/profile/api-tokens');
    expect(fake.isLive(t)).toBe(true);
  });

  it('invalid, rolled, expired and disabled tokens are invalid-token', async () => {
    const t = fake.addToken();
    fake.revoke(t);
    expect((await failure(api.inspect(new Secret(t)), t)).message).toContain('Invalid API Token');
    const old = fake.addToken({ expiresInDays: -1 });
    expect((await failure(api.inspect(new Secret(old)), old)).message).toContain('is expired');
    const off = fake.addToken({ status: 'disabled' });
    expect((await failure(api.inspect(new Secret(off)), off)).kind).toBe('invalid-token');
  });

  it('a lost roll answer: one PUT, transient, and the hint says it is not repeated', async () => {
    const t = fake.addToken();
    fake.fault({ method: 'PUT' }, { kind: 'reset-after' });
    const e = await failure(api.regenerate!(new Secret(t), 'k'), t);
    expect([e.kind, e.notSent]).toEqual(['transient', false]);
    expect(e.hint).toContain('not repeated');
    expect(fake.rollCalls()).toBe(1);
    expect(fake.isLive(t)).toBe(false);
  });

  it('a failed verify before the roll is notSent: the roll never left', async () => {
    const t = fake.addToken();
    fake.fault({ method: 'GET' }, { kind: 'status', status: 502 });
    const e = await failure(api.regenerate!(new Secret(t), 'k'), t);
    expect([e.kind, e.notSent]).toEqual(['transient', true]);
    expect(fake.rollCalls()).toBe(0);
  });

  it('429 is transient with Retry-After', async () => {
    const t = fake.addToken();
    fake.fault({ method: 'GET' }, { kind: 'status', status: 429, retryAfter: '2' });
    const e = await failure(api.inspect(new Secret(t)), t);
    expect([e.kind, e.retryAfterMs]).toEqual(['transient', 2000]);
    expect(e.message).toContain('code 971');
  });
});
