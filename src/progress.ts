/**
 * What a long wait tells the person at the terminal: the CLI installs a sink (src/cli/
 * progress.ts); the daemon does not (its waits are logged), so by default these are no-ops.
 * A module-level sink rather than a Context field: the waits happen deep in the engine
 * (the rotation lock, the API's retry loop) and the daemon must stay silent on stderr.
 */
export interface RetryNotice {
  /** What is being retried, for the person: "checking token abc123def456". */
  what: string;
  /** The 1-based try that just failed, and how many there are in all. */
  attempt: number;
  attempts: number;
  delayMs: number;
  error: string;
}

export interface ProgressSink {
  /** A wait for another process (the rotation lock). Shown on a TTY or not. */
  waiting(message: string): void;
  /** A failed API call about to be tried again. Shown on a TTY only. */
  retrying(n: RetryNotice): void;
}

let sink: ProgressSink | null = null;

export function setProgressSink(s: ProgressSink | null): void {
  sink = s;
}

export function progress(): ProgressSink | null {
  return sink;
}

/** An `onRetry` for withRetry that reports to the sink (and chains the caller's own). */
export function reportRetries(what: string, attempts: number, also?: (attempt: number, delayMs: number, err: unknown) => void) {
  return (attempt: number, delayMs: number, err: unknown): void => {
    also?.(attempt, delayMs, err);
    sink?.retrying({ what, attempt, attempts, delayMs, error: err instanceof Error ? err.message : String(err) });
  };
}
