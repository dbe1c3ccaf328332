/**
 * Retry policy for vendor calls (contract, rotation guarantee 5): transient failures are
 * retried with bounded, jittered backoff; everything else fails at once. The decision is a
 * pure function so it can be tested without clocks; the loop only sleeps and repeats.
 * Callers must pass the same Idempotency-Key on every try of one regenerate (`fn` is
 * called again as is), which is what makes retrying a lost response safe.
 */
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { ApiError } from '../errors.js';

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  /** Backoff ceiling for the first retry; doubles per try. */
  baseMs: number;
  /** No single wait is longer, Retry-After included. */
  maxMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ attempts: 5, baseMs: 500, maxMs: 30_000 });

export function isRetryable(err: unknown): err is ApiError {
  return err instanceof ApiError && err.kind === 'transient';
}

/**
 * How long to wait before the next try, or null to give up.
 * @param attempt the 1-based try that just failed
 */
export function nextRetryDelay(attempt: number, err: unknown, policy: RetryPolicy, random: () => number = Math.random): number | null {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  if (!isRetryable(err)) return null;
  if (attempt >= policy.attempts) return null;
  const maxMs = Math.max(0, policy.maxMs);
  if (err.retryAfterMs !== undefined && Number.isFinite(err.retryAfterMs)) {
    return Math.min(Math.max(0, Math.ceil(err.retryAfterMs)), maxMs);
  }
  const ceiling = Math.min(maxMs, Math.max(0, policy.baseMs) * 2 ** (attempt - 1));
  // "Equal jitter": spreads clients that failed together, yet never retries immediately.
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(ceiling / 2 + (r * ceiling) / 2);
}

export interface WithRetryOptions {
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  onRetry?: (attempt: number, delayMs: number, err: unknown) => void;
  signal?: AbortSignal;
  /** For deterministic jitter in tests. */
  random?: () => number;
}

/**
 * Calls `fn(attempt)` until it resolves, or until nextRetryDelay gives up, in which case
 * the last error is rethrown unchanged (its `kind` is what callers branch on). An aborted
 * `signal` stops the loop with the abort reason, never with a retry.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy, opts: WithRetryOptions = {}): Promise<T> {
  const sleep = opts.sleep ?? defaultSleep;
  const { signal } = opts;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw err;
      const delayMs = nextRetryDelay(attempt, err, policy, opts.random);
      if (delayMs === null) throw err;
      opts.onRetry?.(attempt, delayMs, err);
      await sleep(delayMs, signal);
    }
  }
}

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleepTimer(ms, undefined, signal ? { signal } : undefined);
  } catch (e) {
    // Surface the caller's own reason rather than Node's generic AbortError.
    if (signal?.aborted) throw signal.reason ?? e;
    throw e;
  }
}
