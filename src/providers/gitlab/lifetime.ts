/**
 * GitLab keeps a rotated token's lifetime (contract: "More providers than Certorix"): the new
 * `expires_at` is today + (old `expires_at` - old `created_at`), capped at 365 days (GitLab's
 * maximum); a token without expiry is rotated without one. Pure, in whole UTC days, because
 * GitLab's `expires_at` is a date (the token dies at 00:00 UTC that day).
 */
const DAY_MS = 86_400_000;
export const GITLAB_MAX_LIFETIME_DAYS = 365;

export interface PreviousToken {
  createdAt?: string | null;
  /** `YYYY-MM-DD` or ISO 8601; null: never expires. */
  expiresAt?: string | null;
}

/** Midnight UTC of an ISO date or timestamp's UTC day, or NaN. */
export function utcDay(value: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})(?:$|T)/.exec(value.trim());
  if (m) return Date.parse(`${m[1]}T00:00:00Z`);
  const t = Date.parse(value);
  return Number.isNaN(t) ? NaN : Date.parse(`${new Date(t).toISOString().slice(0, 10)}T00:00:00Z`);
}

const dateOnly = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * The `expires_at` (YYYY-MM-DD) to rotate with, or undefined to send none (the old token
 * never expired). Lifetimes round to whole days, at least 1, at most 365. A token whose
 * creation date is unknown (GitLab always sends it, so only a broken record) gets the cap.
 */
export function gitlabRotateExpiry(previous: PreviousToken, now: Date): string | undefined {
  if (previous.expiresAt === null || previous.expiresAt === undefined || previous.expiresAt.trim() === '') return undefined;
  const expires = utcDay(previous.expiresAt);
  if (Number.isNaN(expires)) return undefined;
  const created = previous.createdAt ? utcDay(previous.createdAt) : NaN;
  const lifetime = Number.isNaN(created) ? GITLAB_MAX_LIFETIME_DAYS : Math.round((expires - created) / DAY_MS);
  const days = Math.min(GITLAB_MAX_LIFETIME_DAYS, Math.max(1, lifetime));
  return dateOnly(utcDay(now.toISOString()) + days * DAY_MS);
}
