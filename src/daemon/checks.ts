/**
 * Pure: when the daemon looks at tokens. Two kinds of look:
 * - ages (local, no network): hourly, at start, after a wake; warns at warnAfterDays;
 * - verification (`GET /v1/token` for each token): at start, after a wake, on SIGHUP, and
 *   at least daily with jitter (Certorix's audit log shows every call, so not hourly); plus
 *   the tokens whose creation date or role is still unknown, at each age check and when a
 *   rescan finds them. When the API is unreachable, verification backs off exponentially
 *   (a wake or SIGHUP asks at once anyway).
 */

/** What asked for a look: the start, a scheduler tick, a wake (clock jump), SIGHUP, a rescan that found new tokens. */
export type Trigger = 'start' | 'tick' | 'wake' | 'reload' | 'found';

export interface CheckTimes {
  ageEveryMs: number;
  verifyEveryMs: number;
  /** The daily verification comes up to this much earlier, at random, so machines do not call at once. */
  verifyJitterMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_CHECK_TIMES: Readonly<CheckTimes> = Object.freeze({
  ageEveryMs: 3_600_000,
  verifyEveryMs: 86_400_000,
  verifyJitterMs: 4 * 3_600_000,
  backoffBaseMs: 30_000,
  backoffMaxMs: 3_600_000,
});

export interface CheckClock {
  nextAgeCheckAt: number;
  nextVerifyAt: number;
  /** Set while the API is unreachable: no verification before it (but for a wake or SIGHUP). */
  retryAt: number | null;
  failures: number;
}

export function initialClock(now: number): CheckClock {
  return { nextAgeCheckAt: now, nextVerifyAt: now, retryAt: null, failures: 0 };
}

export type Verify = 'all' | 'unknown' | 'none';

export interface CheckPlan {
  verify: Verify;
  ages: boolean;
}

export function planChecks(c: CheckClock, now: number, trigger: Trigger, hasUnknown: boolean): CheckPlan {
  const ages = trigger !== 'tick' || now >= c.nextAgeCheckAt;
  let verify: Verify = 'none';
  if (trigger === 'start' || trigger === 'wake' || trigger === 'reload') verify = 'all';
  else if (c.retryAt !== null) {
    if (now >= c.retryAt) verify = now >= c.nextVerifyAt ? 'all' : hasUnknown ? 'unknown' : 'none';
  } else if (now >= c.nextVerifyAt) verify = 'all';
  else if (hasUnknown && ages) verify = 'unknown';
  return { verify, ages };
}

export function backoffMs(failures: number, t: Pick<CheckTimes, 'backoffBaseMs' | 'backoffMaxMs'>): number {
  return Math.min(t.backoffMaxMs, t.backoffBaseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/**
 * The clock after a look. `result`: whether the API answered (a 401 is an answer) or could
 * not be reached. `random` in [0, 1) places the next daily verification in its jitter window.
 */
export function afterChecks(c: CheckClock, now: number, plan: CheckPlan, result: 'answered' | 'unreachable', t: CheckTimes, random: number): CheckClock {
  const n = { ...c };
  if (plan.ages) n.nextAgeCheckAt = now + t.ageEveryMs;
  if (plan.verify !== 'none') {
    if (result === 'unreachable') {
      n.failures = c.failures + 1;
      n.retryAt = now + backoffMs(n.failures, t);
      // A full verification that could not happen stays due, so the retry does it.
      if (plan.verify === 'all') n.nextVerifyAt = Math.min(c.nextVerifyAt, now);
    } else {
      n.failures = 0;
      n.retryAt = null;
      if (plan.verify === 'all') n.nextVerifyAt = now + t.verifyEveryMs - Math.floor(random * t.verifyJitterMs);
    }
  } else if (c.retryAt !== null && now >= c.retryAt) {
    // The retry came and there was nothing left to ask about.
    n.retryAt = null;
    n.failures = 0;
  }
  return n;
}
