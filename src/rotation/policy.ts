/**
 * Pure decisions about a token's life, certbot's should_renew in spirit: inputs and
 * `now` in, a verdict out. Nothing here reads a clock, a file or the network.
 */

export type PublicState = 'ok' | 'due' | 'invalid' | 'rotating';

export interface PolicyToken {
  createdAt: string | null;
  firstSeenAt: string;
  state: 'active' | 'invalid' | 'retired';
  lastWarnedAt?: string | null;
  lastHeadsUpAt?: string | null;
}

const DAY = 86_400_000;

/** Whole days since the token was created (per the API) or, failing that, first seen. */
export function ageDays(t: Pick<PolicyToken, 'createdAt' | 'firstSeenAt'>, now: Date): number {
  const from = Date.parse(t.createdAt ?? t.firstSeenAt);
  if (Number.isNaN(from)) return 0;
  return Math.max(0, Math.floor((now.getTime() - from) / DAY));
}

export function publicState(t: PolicyToken, now: Date, warnAfterDays: number, rotating: boolean): PublicState {
  if (rotating) return 'rotating';
  if (t.state === 'invalid') return 'invalid';
  return ageDays(t, now) >= warnAfterDays ? 'due' : 'ok';
}

/** `status` exit code, monitoring style: 2 beats 1 beats 0. */
export function statusExitCode(states: PublicState[]): 0 | 1 | 2 {
  if (states.some((s) => s === 'invalid' || s === 'rotating')) return 2;
  if (states.some((s) => s === 'due')) return 1;
  return 0;
}

export type Notice = { level: 'warn' | 'info'; kind: 'warn' | 'headsup'; ageDays: number; dueInDays: number };

/**
 * Whether to warn (due) or give a heads-up (due soon) now: at most once a day per token,
 * so a daemon that checks hourly does not nag.
 */
export function noticeFor(t: PolicyToken, now: Date, warnAfterDays: number, headsUpDays: number): Notice | null {
  if (t.state !== 'active') return null;
  const age = ageDays(t, now);
  const dueIn = warnAfterDays - age;
  const recent = (at: string | null | undefined) => at != null && now.getTime() - Date.parse(at) < DAY;
  if (age >= warnAfterDays) return recent(t.lastWarnedAt) ? null : { level: 'warn', kind: 'warn', ageDays: age, dueInDays: dueIn };
  if (headsUpDays > 0 && dueIn <= headsUpDays) return recent(t.lastHeadsUpAt) ? null : { level: 'info', kind: 'headsup', ageDays: age, dueInDays: dueIn };
  return null;
}

/** Should a scheduled (opt-in) rotation happen for this token now? */
export function shouldAutoRotate(t: PolicyToken, now: Date, afterDays: number): boolean {
  return t.state === 'active' && ageDays(t, now) >= afterDays;
}
