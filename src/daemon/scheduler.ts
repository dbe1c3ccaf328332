/**
 * The daemon's clock. Timers do not run while a laptop sleeps, and a Node timer over 24.8
 * days fires at once, so nothing waits on one long timer: a short tick asks the check
 * planner (checks.ts) whether anything is due, and a jump of the wall clock between two
 * ticks (a wake) is reported as such, so tokens are looked at right after it.
 */

/** Pure: a tick that comes much later than it should means the machine slept. */
export function isWake(lastTickAt: number, now: number, tickMs: number): boolean {
  return now - lastTickAt > tickMs * 3;
}

export interface Scheduler {
  stop(): void;
}

export function startScheduler(opts: { tickMs: number; now?: () => number; onTick: (trigger: 'tick' | 'wake') => void }): Scheduler {
  const now = opts.now ?? Date.now;
  let last = now();
  const timer = setInterval(() => {
    const t = now();
    const woke = isWake(last, t, opts.tickMs);
    last = t;
    opts.onTick(woke ? 'wake' : 'tick');
  }, opts.tickMs);
  // The daemon's life is the socket and the watcher; the tick alone must not keep it up.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
