import type { Logger } from '../log.js';
import type { RunningDaemon } from './daemon.js';

export type SignalAction = 'stop' | 'reload' | 'force-exit' | 'ignore';

/**
 * A stop signal this soon after the first is the same request delivered twice, not an
 * impatient user: Ctrl-C under `npm start` reaches the daemon from the terminal and again
 * from npm, and `timeout` or a supervisor may signal the process and its group.
 */
export const DUPLICATE_SIGNAL_MS = 1000;

/** Pure: what a signal means, given whether a stop is under way and since when (ms). */
export function signalAction(sig: NodeJS.Signals, stopping: boolean, sinceStopMs = Infinity): SignalAction {
  if (sig === 'SIGHUP') return stopping ? 'ignore' : 'reload';
  if (sig === 'SIGTERM' || sig === 'SIGINT') {
    if (!stopping) return 'stop';
    return sinceStopMs < DUPLICATE_SIGNAL_MS ? 'ignore' : 'force-exit';
  }
  return 'ignore';
}

const SIGNALS: NodeJS.Signals[] = process.platform === 'win32' ? ['SIGTERM', 'SIGINT'] : ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * The daemon's signal handlers, installed before start-up and never removed, so that they
 * are there for the whole shutdown. That matters: proper-lockfile (loaded for Cline's lock)
 * installs signal-exit, which re-raises a signal once its own handler is the only one left;
 * a handler registered with `once` is gone after the first SIGTERM, and the daemon would
 * die by the signal midway through "daemon stopping". A second SIGTERM/SIGINT (a second or
 * more after the first) exits at once.
 * A stop asked for during start-up happens as soon as the daemon is up.
 */
export function installDaemonSignals(log: Logger, exit: (code: number) => void = (c) => process.exit(c)): { attach(d: RunningDaemon): void } {
  let daemon: RunningDaemon | undefined;
  let stopping = false;
  let stopAt = 0;
  let pendingStop: string | undefined;
  const handler = (sig: NodeJS.Signals) => {
    const action = signalAction(sig, stopping, Date.now() - stopAt);
    if (action === 'stop') {
      stopping = true;
      stopAt = Date.now();
      if (daemon) void daemon.stop(sig);
      else pendingStop = sig;
    } else if (action === 'reload') {
      if (daemon) void daemon.reload();
      else log.info('SIGHUP during start-up: the settings just loaded are in force');
    } else if (action === 'force-exit') {
      log.warn({ signal: sig }, 'second stop signal: exiting now, without waiting for the work in progress (the journal finishes it at the next start)');
      exit(1);
    }
  };
  for (const s of SIGNALS) process.on(s, handler);
  return {
    attach(d) {
      daemon = d;
      if (pendingStop) void d.stop(pendingStop);
    },
  };
}
