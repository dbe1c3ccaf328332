import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCertorixProvider } from '../../src/providers/certorix/api.js';
import type { Provider } from '../../src/providers/types.js';
import { DEFAULT_RETRY_POLICY, nextRetryDelay, withRetry, type RetryPolicy } from '../../src/api/retry.js';
import { ApiError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';

const policy: RetryPolicy = { attempts: 5, baseMs: 500, maxMs: 30_000 };
const transient = (retryAfterMs?: number) => new ApiError('transient', 'flaky', retryAfterMs === undefined ? {} : { retryAfterMs });

/** A sleep that only records, so the loop runs instantly and its waits can be asserted. */
function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

describe('nextRetryDelay', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({ attempts: 5, baseMs: 500, maxMs: 30_000 });
  });

  it.each([
    ['invalid-token', new ApiError('invalid-token', 'x', { status: 401 })],
    ['forbidden', new ApiError('forbidden', 'x', { status: 403 })],
    ['conflict', new ApiError('conflict', 'x', { status: 422 })],
    ['permanent', new ApiError('permanent', 'x', { status: 400 })],
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
  ])('gives up at once on %s', (_name, err) => {
    expect(nextRetryDelay(1, err, policy)).toBeNull();
  });

  it('gives up when the attempts are spent', () => {
    expect(nextRetryDelay(4, transient(), policy)).not.toBeNull();
    expect(nextRetryDelay(5, transient(), policy)).toBeNull();
    expect(nextRetryDelay(1, transient(), { ...policy, attempts: 1 })).toBeNull();
  });

  it('backs off exponentially with jitter between half and all of the ceiling', () => {
    expect([1, 2, 3, 4].map((a) => nextRetryDelay(a, transient(), policy, () => 0))).toEqual([250, 500, 1000, 2000]);
    expect([1, 2, 3, 4].map((a) => nextRetryDelay(a, transient(), policy, () => 1))).toEqual([500, 1000, 2000, 4000]);
    expect(nextRetryDelay(3, transient(), policy, () => 0.5)).toBe(1500);
  });

  it('caps the backoff at maxMs', () => {
    const p = { attempts: 50, baseMs: 500, maxMs: 30_000 };
    expect(nextRetryDelay(10, transient(), p, () => 1)).toBe(30_000);
    expect(nextRetryDelay(40, transient(), p, () => 1)).toBe(30_000);
    expect(nextRetryDelay(40, transient(), p, () => 0)).toBe(15_000);
  });

  it('tolerates a random() outside [0, 1]', () => {
    expect(nextRetryDelay(1, transient(), policy, () => 7)).toBe(500);
    expect(nextRetryDelay(1, transient(), policy, () => -3)).toBe(250);
  });

  it('honours Retry-After, capped at maxMs', () => {
    expect(nextRetryDelay(1, transient(7000), policy, () => 1)).toBe(7000);
    expect(nextRetryDelay(1, transient(0), policy)).toBe(0);
    expect(nextRetryDelay(1, transient(3_600_000), policy)).toBe(30_000);
    expect(nextRetryDelay(5, transient(1000), policy)).toBeNull();
  });

  it('rejects a nonsensical attempt number', () => {
    expect(() => nextRetryDelay(0, transient(), policy)).toThrow(RangeError);
    expect(() => nextRetryDelay(1.5, transient(), policy)).toThrow(RangeError);
  });
});

describe('withRetry', () => {
  it('retries transient failures with the same function until it succeeds', async () => {
    const { delays, sleep } = recordingSleep();
    const seen: number[] = [];
    const fn = async (attempt: number) => {
      seen.push(attempt);
      if (attempt < 3) throw transient();
      return 'ok';
    };
    const retries: Array<[number, number]> = [];
    const out = await withRetry(fn, policy, { sleep, random: () => 0, onRetry: (a, d) => retries.push([a, d]) });
    expect(out).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
    expect(delays).toEqual([250, 500]);
    expect(retries).toEqual([
      [1, 250],
      [2, 500],
    ]);
  });

  it('stops at once on 401 and rethrows it unchanged', async () => {
    const { delays, sleep } = recordingSleep();
    const err = new ApiError('invalid-token', 'dead', { status: 401 });
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw err;
        },
        policy,
        { sleep },
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
    expect(delays).toEqual([]);
  });

  it('stops on 403 and on errors that are not ApiErrors', async () => {
    const { sleep } = recordingSleep();
    for (const err of [new ApiError('forbidden', 'no'), new TypeError('bug')]) {
      let calls = 0;
      await expect(
        withRetry(
          async () => {
            calls++;
            throw err;
          },
          policy,
          { sleep },
        ),
      ).rejects.toBe(err);
      expect(calls).toBe(1);
    }
  });

  it('honours Retry-After and caps it', async () => {
    const { delays, sleep } = recordingSleep();
    const errs = [transient(7000), transient(120_000), transient()];
    const out = await withRetry(
      async (attempt) => {
        const e = errs[attempt - 1];
        if (e) throw e;
        return attempt;
      },
      policy,
      { sleep, random: () => 1 },
    );
    expect(out).toBe(4);
    expect(delays).toEqual([7000, 30_000, 2000]);
  });

  it('gives up after the last attempt with the last error', async () => {
    const { delays, sleep } = recordingSleep();
    const errs = [transient(), transient(), new ApiError('transient', 'last one')];
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          throw errs[calls++];
        },
        { attempts: 3, baseMs: 10, maxMs: 100 },
        { sleep },
      ),
    ).rejects.toBe(errs[2]);
    expect(calls).toBe(3);
    expect(delays).toHaveLength(2);
  });

  it('stops when the signal aborts, during the wait or before a try', async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = withRetry(
      async () => {
        calls++;
        throw transient(10_000);
      },
      policy,
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(new Error('stop')), 20);
    await expect(p).rejects.toThrow('stop');
    expect(calls).toBe(1);
    await expect(withRetry(async () => 1, policy, { signal: ac.signal })).rejects.toThrow('stop');
  });

  it('really sleeps by default', async () => {
    let calls = 0;
    const t0 = Date.now();
    await withRetry(
      async () => {
        if (++calls === 1) throw transient(60);
        return calls;
      },
      policy,
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
  });
});

describe('withRetry against the fake Certorix API', () => {
  let fake: FakeCertorix;
  let api: Provider;
  beforeEach(async () => {
    fake = await startFakeCertorix();
    api = createCertorixProvider({ apiUrl: fake.url, timeoutMs: 1000 });
  });
  afterEach(async () => {
    await api.close();
    await fake.close();
  });

  it('the lost response: reset after the server acted, retried with the same key, yields exactly one regeneration and the minted token', async () => {
    const old = new Secret(fake.addToken({ email: 'lost@example.com', role: 'editor' }));
    fake.fault({ method: 'POST', path: '/v1/token/regenerate' }, { kind: 'reset-after' });
    const { delays, sleep } = recordingSleep();
    const key = 'rot-0001-lost-response';
    const res = await withRetry((_attempt) => api.regenerate(old, key), policy, { sleep });
    expect(fake.regenerateCount).toBe(1);
    const live = fake.liveTokens('lost@example.com');
    expect(live).toHaveLength(1);
    expect(res.token.reveal()).toBe(live[0]!.token);
    expect(res.id).toBe(live[0]!.id);
    expect(fake.isLive(old.reveal())).toBe(false);
    const regens = fake.requests.filter((r) => r.path === '/v1/token/regenerate');
    expect(regens.map((r) => r.idempotencyKey)).toEqual([key, key]);
    expect(regens.map((r) => r.status)).toEqual([0, 201]);
    expect(delays).toHaveLength(1);
  });

  it('survives a mix of 503, 429, malformed and a lost response with one regeneration', async () => {
    const old = new Secret(fake.addToken({}));
    const path = '/v1/token/regenerate';
    fake.fault({ path }, { kind: 'status', status: 503 });
    fake.fault({ path }, { kind: 'status', status: 429, retryAfter: '2' });
    fake.fault({ path }, { kind: 'malformed' });
    fake.fault({ path }, { kind: 'reset-after' });
    const { delays, sleep } = recordingSleep();
    const res = await withRetry(() => api.regenerate(old, 'rot-mix'), { attempts: 5, baseMs: 100, maxMs: 1000 }, { sleep, random: () => 0 });
    expect(fake.regenerateCount).toBe(1);
    expect(res.token.reveal()).toBe(fake.liveTokens()[0]!.token);
    expect(delays).toEqual([50, 1000, 200, 400]);
  });

  it('a hang is retried after the timeout and then succeeds', async () => {
    const old = new Secret(fake.addToken({}));
    const p = createCertorixProvider({ apiUrl: fake.url, timeoutMs: 200 });
    try {
      fake.fault({}, { kind: 'hang' });
      const res = await withRetry(() => p.regenerate(old, 'rot-hang'), policy, { sleep: async () => {} });
      expect(res.token.reveal()).toBe(fake.liveTokens()[0]!.token);
      expect(fake.regenerateCount).toBe(1);
    } finally {
      await p.close();
    }
  });

  it('why the key must be reused: a fresh key after a lost response meets a dead bearer (401) and is not retried', async () => {
    const old = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'reset-after' });
    const { sleep } = recordingSleep();
    const err = await withRetry((attempt) => api.regenerate(old, `fresh-${attempt}`), policy, { sleep }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).kind).toBe('invalid-token');
    expect(fake.requests).toHaveLength(2);
  });

  it('does not retry a 401 or a 403 from the server', async () => {
    const { sleep } = recordingSleep();
    const dead = new Secret('ctx_never_issued_token_000000000000');
    await expect(withRetry(() => api.inspect(dead), policy, { sleep })).rejects.toMatchObject({ kind: 'invalid-token' });
    const live = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'status', status: 403 }, 5);
    await expect(withRetry(() => api.regenerate(live, 'k'), policy, { sleep })).rejects.toMatchObject({ kind: 'forbidden' });
    expect(fake.requests).toHaveLength(2);
  });

  it('gives up on a server that keeps failing, after policy.attempts tries', async () => {
    const old = new Secret(fake.addToken({}));
    fake.fault({}, { kind: 'status', status: 502 }, 10);
    const { sleep } = recordingSleep();
    await expect(withRetry(() => api.regenerate(old, 'k'), { attempts: 3, baseMs: 1, maxMs: 1 }, { sleep })).rejects.toMatchObject({
      kind: 'transient',
      status: 502,
    });
    expect(fake.requests).toHaveLength(3);
    expect(fake.isLive(old.reveal())).toBe(true);
  });
});
