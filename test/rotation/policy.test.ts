import { describe, expect, it } from 'vitest';
import { ageDays, factsUnknown, isDue, minAgeDays, noticeFor, publicState, shouldAutoRotate, statusExitCode, type PolicyToken } from '../../src/rotation/policy.js';

const NOW = new Date('2026-11-29T12:00:00Z');
const daysAgo = (d: number, h = 0) => new Date(NOW.getTime() - d * 86_400_000 - h * 3_600_000).toISOString();
const tok = (o: Partial<PolicyToken>): PolicyToken => ({ createdAt: null, firstSeenAt: daysAgo(0), state: 'active', ...o });

describe('policy', () => {
  it.each([
    [tok({ createdAt: daysAgo(95) }), 95],
    [tok({ createdAt: daysAgo(89, 23) }), 89],
    [tok({ createdAt: null, firstSeenAt: daysAgo(12) }), null], // unknown until the API says: never a made-up 0
    [tok({ createdAt: 'garbage' }), null],
    [tok({ createdAt: daysAgo(-1) }), 0], // a clock ahead of ours never gives a negative age
  ])('age of %j is %s whole days', (t, d) => {
    expect(ageDays(t, NOW)).toBe(d);
  });

  it.each([
    ['known age wins over first sight', tok({ createdAt: daysAgo(95), firstSeenAt: daysAgo(2) }), 95, true],
    ['unknown age, first seen 93 days ago: at least 93, due', tok({ createdAt: null, firstSeenAt: daysAgo(93) }), 93, true],
    ['unknown age, first seen today: at least 0, not due', tok({ createdAt: null, firstSeenAt: daysAgo(0) }), 0, false],
  ])('lower bound: %s', (_n, t, min, due) => {
    expect(minAgeDays(t, NOW)).toBe(min);
    expect(isDue(t, NOW, 90)).toBe(due);
  });

  it.each([
    [{ createdAt: null, role: 'editor', state: 'active' }, true],
    [{ createdAt: daysAgo(3), role: null, state: 'active' }, true],
    [{ createdAt: daysAgo(3), role: 'viewer', state: 'invalid' }, false],
    [{ createdAt: null, role: null, state: 'retired' }, false], // history, not asked about
  ])('facts unknown for %j: %s', (t, unknown) => {
    expect(factsUnknown(t)).toBe(unknown);
  });

  it.each([
    [tok({ createdAt: daysAgo(90) }), false, 'due'],
    [tok({ createdAt: daysAgo(89) }), false, 'ok'],
    [tok({ createdAt: daysAgo(10), state: 'invalid' }), false, 'invalid'],
    [tok({ createdAt: daysAgo(100), state: 'invalid' }), true, 'rotating'],
    [tok({ createdAt: null, firstSeenAt: daysAgo(1) }), false, 'ok'],
    [tok({ createdAt: null, firstSeenAt: daysAgo(120) }), false, 'due'],
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
    ['unknown age, seen 95 days ago: warned as at least 95', tok({ createdAt: null, firstSeenAt: daysAgo(95) }), { kind: 'warn', ageDays: null, minAgeDays: 95 }],
    ['unknown age, seen 85 days ago: no guessed heads-up', tok({ createdAt: null, firstSeenAt: daysAgo(85) }), null],
    ['unknown age, seen today: nothing', tok({ createdAt: null }), null],
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

describe('policy: expiry (providers that tell it: GitHub, GitLab, Cloudflare)', () => {
  const inDays = (d: number) => new Date(NOW.getTime() + d * 86_400_000).toISOString();
  it.each([
    ['expires in 20 days, warn 14 before: not due', tok({ expiresAt: inDays(20) }), false],
    ['expires in 14 days: due', tok({ expiresAt: inDays(14) }), true],
    ['expires in 3 days: due', tok({ expiresAt: inDays(3) }), true],
    ['expired yesterday: due', tok({ expiresAt: inDays(-1) }), true],
    ['no expiry, young: not due', tok({ expiresAt: null }), false],
    ['no expiry but old: due by age', tok({ expiresAt: null, createdAt: daysAgo(95) }), true],
  ])('%s', (_n, t, due) => {
    expect(isDue(t, NOW, 90, 14)).toBe(due);
    expect(publicState(t, NOW, 90, false, 14)).toBe(due ? 'due' : 'ok');
  });

  it('warns about a coming expiry once a day, with the days left, even when the age is unknown', () => {
    const t = tok({ expiresAt: inDays(10) });
    expect(noticeFor(t, NOW, 90, 7, 14)).toMatchObject({ level: 'warn', kind: 'warn', reason: 'expiry', expiresInDays: 10, ageDays: null });
    expect(noticeFor({ ...t, lastWarnedAt: daysAgo(0, 2) }, NOW, 90, 7, 14)).toBeNull();
    expect(noticeFor(tok({ expiresAt: inDays(30) }), NOW, 90, 7, 14)).toBeNull();
  });

  it('a provider that never tells creation dates is not "facts unknown" once it answered', () => {
    expect(factsUnknown({ createdAt: null, role: 'repo', state: 'active' }, false)).toBe(false);
    expect(factsUnknown({ createdAt: null, role: null, state: 'active' }, false)).toBe(true);
    expect(factsUnknown({ createdAt: null, role: 'repo', state: 'active' }, true)).toBe(true);
  });
});
