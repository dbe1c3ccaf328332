/**
 * Crash injection for the crash tests: MCP_TOKEN_ROTATOR_CRASH_AT=<point>[:<nth>] makes the
 * process SIGKILL itself the nth time it passes <point>, the harshest way a laptop can die
 * mid-rotation. Unset (always, outside tests) it costs one property read.
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

export function failpoint(point: CrashPoint): void {
  if (target !== point) return;
  if (++hits === nth) process.kill(process.pid, 'SIGKILL');
}
