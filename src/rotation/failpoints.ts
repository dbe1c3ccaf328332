/**
 * Crash injection for the crash tests: MCP_TOKEN_ROTATOR_CRASH_AT=<point>[:<nth>] makes the
 * process SIGKILL itself the nth time it passes <point>, the harshest way a laptop can die
 * mid-rotation. Unset (always, outside tests) it costs one property read.
 * MCP_TOKEN_ROTATOR_SIGINT_AT does the same with SIGINT (the Ctrl-C tests, test/cli/interrupt.test.ts).
 */
const spec = process.env.MCP_TOKEN_ROTATOR_CRASH_AT;
const [target, nthText] = spec ? spec.split(':') : [];
const nth = Number(nthText ?? '1') || 1;
let hits = 0;

export const CRASH_POINTS = [
  'during-preflight-probe',
  'after-intent',
  'after-regenerate-response',
  'after-new-token',
  'after-broker-stored',
  'after-file-written',
  'after-files-recorded',
  'after-verified',
  'after-finish',
  // broker enable / disable
  'broker-after-store',
  'broker-after-entries-recorded',
  'broker-after-file-written',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

// MCP_TOKEN_ROTATOR_SIGINT_AT=<point>[:<nth>]: a Ctrl-C there instead (delivered as the next event, as a real one is).
const intSpec = process.env.MCP_TOKEN_ROTATOR_SIGINT_AT;
const [intTarget, intNthText] = intSpec ? intSpec.split(':') : [];
const intNth = Number(intNthText ?? '1') || 1;
let intHits = 0;

export function failpoint(point: CrashPoint): void {
  if (intTarget === point && ++intHits === intNth) process.kill(process.pid, 'SIGINT');
  if (target !== point) return;
  if (++hits === nth) process.kill(process.pid, 'SIGKILL');
}
