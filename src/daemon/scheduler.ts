/**
 * When to check token ages. Timers do not run while a laptop sleeps, and a Node timer over
 * 24.8 days fires at once, so nothing waits on one long timer: a short tick compares the
 * wall clock with when the next check is due, and a jump of the clock (a wake) checks now.
 */

export interface TickState {
  lastTickAt: number;
  nextCheckAt: number;
}

export interface TickDecision {
  check: boolean;
  reason?: 'due' | 'wake';
  state: TickState;
}

/** Pure: given the last tick, now and the intervals, whether to run the age check. */
export function decideTick(s: TickState, now: number, opts: { tickMs: number; checkEveryMs: number }): TickDecision {
  const woke = now - s.lastTickAt > opts.tickMs * 3;
  if (woke || now >= s.nextCheckAt) {
    return { check: true, reason: woke ? 'wake' : 'due', state: { lastTickAt: now, nextCheckAt: now + opts.checkEveryMs } };
  }
  return { check: false, state: { ...s, lastTickAt: now } };
}

export interface Scheduler {
  stop(): void;
}

export function startScheduler(opts: { tickMs: number; checkEveryMs: number; now?: () => number; onCheck: (reason: 'start' | 'due' | 'wake') => void }): Scheduler {
  const now = opts.now ?? Date.now;
  let state: TickState = { lastTickAt: now(), nextCheckAt: now() + opts.checkEveryMs };
  opts.onCheck('start');
  const timer = setInterval(() => {
    const d = decideTick(state, now(), opts);
    state = d.state;
    if (d.check && d.reason) opts.onCheck(d.reason);
  }, opts.tickMs);
  // The daemon's life is the socket and the watcher; the tick alone must not keep it up.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
