import { describe, expect, it } from 'vitest';
import { afterChecks, backoffMs, DEFAULT_CHECK_TIMES, initialClock, planChecks, type CheckClock, type Trigger } from '../../src/daemon/checks.js';
import { isWake } from '../../src/daemon/scheduler.js';
import { signalAction } from '../../src/daemon/signals.js';

const H = 3_600_000;
const T = DEFAULT_CHECK_TIMES;
const clock = (o: Partial<CheckClock> = {}): CheckClock => ({ nextAgeCheckAt: 10 * H, nextVerifyAt: 20 * H, retryAt: null, failures: 0, ...o });

describe('planChecks: when tokens are looked at', () => {
  it.each<[string, CheckClock, number, Trigger, boolean, { verify: string; ages: boolean }]>([
    ['start: everything', initialClock(0), 0, 'start', false, { verify: 'all', ages: true }],
    ['a wake: everything, even while backing off', clock({ retryAt: 9 * H, failures: 3 }), 5 * H, 'wake', false, { verify: 'all', ages: true }],
    ['SIGHUP: everything', clock(), 5 * H, 'reload', false, { verify: 'all', ages: true }],
    ['a tick with nothing due', clock(), 5 * H, 'tick', true, { verify: 'none', ages: false }],
    ['the hourly age check asks about unknown tokens', clock(), 10 * H, 'tick', true, { verify: 'unknown', ages: true }],
    ['the hourly age check, all facts known: no API call', clock(), 10 * H, 'tick', false, { verify: 'none', ages: true }],
    ['the daily verification is due', clock(), 20 * H, 'tick', false, { verify: 'all', ages: true }],
    ['new tokens found: asked about at once', clock(), 5 * H, 'found', true, { verify: 'unknown', ages: true }],
    ['backing off: the hourly check does not call', clock({ retryAt: 12 * H, failures: 2 }), 10 * H, 'tick', true, { verify: 'none', ages: true }],
    ['backing off: new tokens wait for the retry', clock({ retryAt: 12 * H, failures: 2 }), 5 * H, 'found', true, { verify: 'none', ages: true }],
    ['the retry comes: unknown tokens', clock({ retryAt: 8 * H, failures: 2 }), 8 * H, 'tick', true, { verify: 'unknown', ages: false }],
    ['the retry of a failed daily verification: all', clock({ retryAt: 12 * H, nextVerifyAt: 11 * H, failures: 1 }), 12 * H, 'tick', false, { verify: 'all', ages: true }],
  ])('%s', (_n, c, now, trigger, hasUnknown, expected) => {
    expect(planChecks(c, now, trigger, hasUnknown)).toEqual(expected);
  });

  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 8, 50].map((f) => backoffMs(f, T))).toEqual([30_000, 60_000, 120_000, 240_000, T.backoffMaxMs, T.backoffMaxMs]);
  });

  it('an answered verification schedules the next one within a day, with jitter', () => {
    const lo = afterChecks(initialClock(0), 0, { verify: 'all', ages: true }, 'answered', T, 0);
    const hi = afterChecks(initialClock(0), 0, { verify: 'all', ages: true }, 'answered', T, 0.999);
    expect(lo.nextVerifyAt).toBe(24 * H);
    expect(hi.nextVerifyAt).toBeGreaterThan(20 * H);
    expect(hi.nextVerifyAt).toBeLessThan(24 * H);
    expect(lo.nextAgeCheckAt).toBe(H);
    expect(lo.retryAt).toBeNull();
  });

  it('an unreachable API: retry later, the daily verification stays due', () => {
    let c = initialClock(0);
    c = afterChecks(c, 0, { verify: 'all', ages: true }, 'unreachable', T, 0.5);
    expect(c).toMatchObject({ failures: 1, retryAt: 30_000, nextVerifyAt: 0 });
    expect(planChecks(c, 10_000, 'tick', true).verify).toBe('none');
    expect(planChecks(c, 30_000, 'tick', true).verify).toBe('all');
    c = afterChecks(c, 30_000, { verify: 'all', ages: false }, 'unreachable', T, 0.5);
    expect(c).toMatchObject({ failures: 2, retryAt: 90_000 });
    c = afterChecks(c, 90_000, { verify: 'all', ages: false }, 'answered', T, 0);
    expect(c).toMatchObject({ failures: 0, retryAt: null, nextVerifyAt: 90_000 + 24 * H });
  });

  it('a retry with nothing left to ask about ends the backoff', () => {
    const c = afterChecks(clock({ retryAt: 12 * H, failures: 2 }), 12 * H, { verify: 'none', ages: false }, 'answered', T, 0);
    expect(c).toMatchObject({ retryAt: null, failures: 0 });
  });
});

describe('wake detection and signals', () => {
  it.each([
    [0, 60_000, false],
    [0, 150_000, false],
    [0, 7_200_000, true],
  ])('last tick %i, now %i: wake %s', (last, now, wake) => {
    expect(isWake(last, now, 60_000)).toBe(wake);
  });

  it.each([
    ['SIGTERM', false, 'stop'],
    ['SIGINT', false, 'stop'],
    ['SIGTERM', true, 'force-exit'],
    ['SIGINT', true, 'force-exit'],
    ['SIGHUP', false, 'reload'],
    ['SIGHUP', true, 'ignore'],
    ['SIGUSR2', false, 'ignore'],
  ] as const)('%s while stopping=%s: %s', (sig, stopping, action) => {
    expect(signalAction(sig, stopping)).toBe(action);
  });

  it.each([
    ['SIGINT', 0, 'ignore'], // Ctrl-C under npm start: the terminal's and npm's copy
    ['SIGTERM', 999, 'ignore'],
    ['SIGTERM', 1000, 'force-exit'],
    ['SIGINT', 5000, 'force-exit'],
  ] as const)('%s %i ms after the first stop signal: %s', (sig, since, action) => {
    expect(signalAction(sig, true, since)).toBe(action);
  });
});
