/**
 * Pure decisions about a token's life, certbot's should_renew in spirit: inputs and
 * `now` in, a verdict out. Nothing here reads a clock, a file or the network.
 *
 * Age is a fact only the API knows (`created_at`). Until it has answered, the age is
 * unknown (`null`), never a made-up 0; what is known is a lower bound, the days since this
 * tool first saw the token, which is enough to call a token due (it is at least that old)
 * but never enough to call it young.
 */

export type PublicState = 'ok' | 'due' | 'invalid' | 'rotating';

export interface PolicyToken {
  createdAt: string | null;
  firstSeenAt: string;
  /** When the provider's API says it expires (null: never, or not told). */
  expiresAt?: string | null;
  state: 'active' | 'invalid' | 'retired';
  lastWarnedAt?: string | null;
  lastHeadsUpAt?: string | null;
}

const DAY = 86_400_000;

function daysSince(iso: string | null, now: Date): number | null {
  if (iso === null) return null;
  const from = Date.parse(iso);
  if (Number.isNaN(from)) return null;
  return Math.max(0, Math.floor((now.getTime() - from) / DAY));
}

/** Whole days since the token was created, per the API; null while the API has not said. */
export function ageDays(t: Pick<PolicyToken, 'createdAt'>, now: Date): number | null {
  return daysSince(t.createdAt, now);
}

/** What is surely true: the age when known, else the days since first seen (a lower bound). */
export function minAgeDays(t: Pick<PolicyToken, 'createdAt' | 'firstSeenAt'>, now: Date): number {
  return ageDays(t, now) ?? daysSince(t.firstSeenAt, now) ?? 0;
}

/** Whole days until the token expires (negative once it has), or null when it does not (or nobody said). */
export function expiresInDays(t: Pick<PolicyToken, 'expiresAt'>, now: Date): number | null {
  if (t.expiresAt == null) return null;
  const at = Date.parse(t.expiresAt);
  if (Number.isNaN(at)) return null;
  return Math.floor((at - now.getTime()) / DAY);
}

/** Expires within `warnBeforeExpiryDays` (or already has). */
export function expiresSoon(t: Pick<PolicyToken, 'expiresAt'>, now: Date, warnBeforeExpiryDays: number): boolean {
  if (t.expiresAt == null) return false;
  const at = Date.parse(t.expiresAt);
  return !Number.isNaN(at) && at - now.getTime() <= warnBeforeExpiryDays * DAY;
}

/**
 * Due: at least `warnAfterDays` old, by the known age or by the lower bound; or expiring
 * within `warnBeforeExpiryDays` (contract: "More providers than Certorix").
 */
export function isDue(t: Pick<PolicyToken, 'createdAt' | 'firstSeenAt' | 'expiresAt'>, now: Date, warnAfterDays: number, warnBeforeExpiryDays = 14): boolean {
  return minAgeDays(t, now) >= warnAfterDays || expiresSoon(t, now, warnBeforeExpiryDays);
}

export function publicState(t: PolicyToken, now: Date, warnAfterDays: number, rotating: boolean, warnBeforeExpiryDays = 14): PublicState {
  if (rotating) return 'rotating';
  if (t.state === 'invalid') return 'invalid';
  return isDue(t, now, warnAfterDays, warnBeforeExpiryDays) ? 'due' : 'ok';
}

/** `status` exit code, monitoring style: 2 beats 1 beats 0. */
export function statusExitCode(states: PublicState[]): 0 | 1 | 2 {
  if (states.some((s) => s === 'invalid' || s === 'rotating')) return 2;
  if (states.some((s) => s === 'due')) return 1;
  return 0;
}

export type Notice = {
  level: 'warn' | 'info';
  kind: 'warn' | 'headsup';
  /** What makes it due: its age, or its coming expiry. */
  reason: 'age' | 'expiry';
  /** Days until it expires (null: it does not, or nobody said). */
  expiresInDays: number | null;
  /** null when the API has not told the creation date (the notice then rests on `minAgeDays`). */
  ageDays: number | null;
  minAgeDays: number;
  dueInDays: number;
};

/**
 * Whether to warn (due) or give a heads-up (due soon) now: at most once a day per token,
 * so a daemon that checks hourly does not nag. A token of unknown age gets a warning only
 * when even its lower bound is due, and never a heads-up (that would guess).
 */
export function noticeFor(t: PolicyToken, now: Date, warnAfterDays: number, headsUpDays: number, warnBeforeExpiryDays = 14): Notice | null {
  if (t.state !== 'active') return null;
  const age = ageDays(t, now);
  const min = minAgeDays(t, now);
  const dueIn = warnAfterDays - min;
  const expIn = expiresInDays(t, now);
  const recent = (at: string | null | undefined) => at != null && now.getTime() - Date.parse(at) < DAY;
  const base = { ageDays: age, minAgeDays: min, dueInDays: dueIn, expiresInDays: expIn };
  if (expiresSoon(t, now, warnBeforeExpiryDays)) return recent(t.lastWarnedAt) ? null : { level: 'warn', kind: 'warn', reason: 'expiry', ...base };
  if (min >= warnAfterDays) return recent(t.lastWarnedAt) ? null : { level: 'warn', kind: 'warn', reason: 'age', ...base };
  if (age === null) return null;
  if (headsUpDays > 0 && dueIn <= headsUpDays) return recent(t.lastHeadsUpAt) ? null : { level: 'info', kind: 'headsup', reason: 'age', ...base };
  return null;
}

/** Should a scheduled (opt-in) rotation happen for this token now? (Only for providers that can rotate: the caller's filter.) */
export function shouldAutoRotate(t: PolicyToken, now: Date, afterDays: number, warnBeforeExpiryDays = 14): boolean {
  return t.state === 'active' && isDue(t, now, afterDays, warnBeforeExpiryDays);
}

/**
 * A token whose creation date or role the API has not told yet: the daemon keeps asking.
 * `tellsCreationDate` false (GitHub, Cloudflare): a missing date is all there will ever be,
 * so only a token never answered for counts.
 */
export function factsUnknown(t: { createdAt: string | null; role: string | null; state: string; lastCheckedAt?: string | null }, tellsCreationDate = true): boolean {
  if (t.state === 'retired') return false;
  if (!tellsCreationDate) return t.role === null;
  return t.createdAt === null || t.role === null;
}
