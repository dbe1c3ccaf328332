import { describe, expect, it } from 'vitest';
import { ageDays, noticeFor, publicState, shouldAutoRotate, statusExitCode, type PolicyToken } from '../../src/rotation/policy.js';
import { decideTick } from '../../src/daemon/scheduler.js';

const NOW = new Date('2026-11-29T12:00:00Z');
const daysAgo = (d: number, h = 0) => new Date(NOW.getTime() - d * 86_400_000 - h * 3_600_000).toISOString();
const tok = (o: Partial<PolicyToken>): PolicyToken => ({ createdAt: null, firstSeenAt: daysAgo(0), state: 'active', ...o });

describe('policy', () => {
  it.each([
    [tok({ createdAt: daysAgo(95) }), 95],
    [tok({ createdAt: daysAgo(89, 23) }), 89],
    [tok({ createdAt: null, firstSeenAt: daysAgo(12) }), 12],
    [tok({ createdAt: daysAgo(-1) }), 0], // a clock ahead of ours never gives a negative age
  ])('age of %j is %i whole days', (t, d) => {
    expect(ageDays(t, NOW)).toBe(d);
  });

  it.each([
    [tok({ createdAt: daysAgo(90) }), false, 'due'],
    [tok({ createdAt: daysAgo(89) }), false, 'ok'],
    [tok({ createdAt: daysAgo(10), state: 'invalid' }), false, 'invalid'],
    [tok({ createdAt: daysAgo(100), state: 'invalid' }), true, 'rotating'],
  ] as const)('state of %j (rotating=%s) is %s', (t, rotating, state) => {
    expect(publicState(t, NOW, 90, rotating)).toBe(state);
  });

  it.each([
    [['ok', 'ok'], 0],
    [['ok', 'due'], 1],
    [['due', 'invalid'], 2],
    [['rotating'], 2],
    [[], 0],
  ] as const)('status exit for %j is %i', (states, code) => {
    expect(statusExitCode([...states])).toBe(code);
  });

  it.each([
    ['due, never warned', tok({ createdAt: daysAgo(93) }), { level: 'warn', kind: 'warn', ageDays: 93 }],
    ['due, warned 2 h ago', tok({ createdAt: daysAgo(93), lastWarnedAt: daysAgo(0, 2) }), null],
    ['due, warned 25 h ago', tok({ createdAt: daysAgo(93), lastWarnedAt: daysAgo(1, 1) }), { kind: 'warn' }],
    ['5 days before due', tok({ createdAt: daysAgo(85) }), { level: 'info', kind: 'headsup', dueInDays: 5 }],
    ['heads-up given today', tok({ createdAt: daysAgo(85), lastHeadsUpAt: daysAgo(0, 3) }), null],
    ['young', tok({ createdAt: daysAgo(10) }), null],
    ['invalid tokens are not nagged about age', tok({ createdAt: daysAgo(200), state: 'invalid' }), null],
  ])('notice: %s', (_n, t, expected) => {
    const n = noticeFor(t, NOW, 90, 7);
    if (expected === null) expect(n).toBeNull();
    else expect(n).toMatchObject(expected);
  });

  it('auto-rotates only active tokens past afterDays', () => {
    expect(shouldAutoRotate(tok({ createdAt: daysAgo(91) }), NOW, 90)).toBe(true);
    expect(shouldAutoRotate(tok({ createdAt: daysAgo(50) }), NOW, 90)).toBe(false);
    expect(shouldAutoRotate(tok({ createdAt: daysAgo(91), state: 'retired' }), NOW, 90)).toBe(false);
  });
});

describe('scheduler tick', () => {
  const opts = { tickMs: 60_000, checkEveryMs: 3_600_000 };
  it.each([
    ['a normal tick before the hour', { lastTickAt: 0, nextCheckAt: 3_600_000 }, 60_000, false, undefined],
    ['the hour is reached', { lastTickAt: 3_540_000, nextCheckAt: 3_600_000 }, 3_600_000, true, 'due'],
    ['the laptop slept 2 h (clock jumped)', { lastTickAt: 60_000, nextCheckAt: 3_600_000 }, 60_000 + 7_200_000, true, 'wake'],
    ['a slightly late tick is not a wake', { lastTickAt: 60_000, nextCheckAt: 3_600_000 }, 60_000 + 90_000, false, undefined],
  ])('%s', (_n, state, now, check, reason) => {
    const d = decideTick(state, now, opts);
    expect(d.check).toBe(check);
    expect(d.reason).toBe(reason);
    expect(d.state.lastTickAt).toBe(now);
    if (check) expect(d.state.nextCheckAt).toBe(now + opts.checkEveryMs);
  });
});
