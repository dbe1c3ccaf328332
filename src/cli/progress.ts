import { setProgressSink, type RetryNotice } from '../progress.js';
import { escapeControls } from '../terminal.js';

/** Pure: the line shown while an API call is retried. */
export function retryLine(n: RetryNotice): string {
  const secs = Math.max(1, Math.round(n.delayMs / 1000));
  return `${n.what}: attempt ${n.attempt} of ${n.attempts} failed (${n.error}); next try in ${secs} s...`;
}

/**
 * The CLI's progress on stderr: waits for another process always (a script's log should say
 * why it paused), retries only on a terminal (a script gets the one final error instead).
 */
export function installCliProgress(stream: NodeJS.WriteStream = process.stderr): void {
  setProgressSink({
    waiting: (message) => {
      stream.write(escapeControls(message) + '\n');
    },
    retrying: (n) => {
      if (stream.isTTY) stream.write(escapeControls(retryLine(n)) + '\n');
    },
  });
}
