import { describe, expect, it } from 'vitest';
import { colourEnabled, terminalWidth, visibleLength } from '../../src/cli/style.js';
import { groupLocations, renderStatusTable, wrapGroups } from '../../src/cli/status-view.js';
import { badFingerprintMessage, safeParseError, setTokenArgumentMessage } from '../../src/cli/argv-safety.js';
import { retryLine } from '../../src/cli/progress.js';
import type { StatusToken } from '../../src/status.js';

const TOKEN = 'ctx_live_0123456789abcdefABCDEF';

describe('colour and width decisions', () => {
  it.each([
    [{}, true, false, true],
    [{}, false, false, false],
    [{ NO_COLOR: '1' }, true, false, false],
    [{ NO_COLOR: '' }, true, false, true],
    [{ FORCE_COLOR: '1' }, false, false, true],
    [{ FORCE_COLOR: '0' }, true, false, false],
    [{ FORCE_COLOR: '1', NO_COLOR: '1' }, true, false, false],
    [{ FORCE_COLOR: '1' }, true, true, false],
  ])('env %j, tty %s, json %s -> colour %s', (env, isTTY, json, want) => {
    expect(colourEnabled({ env, isTTY, json })).toBe(want);
  });

  it.each([
    [{ COLUMNS: '120' }, true, 60, 120],
    [{ COLUMNS: 'wide' }, true, 60, 60],
    [{}, true, 60, 60],
    [{}, false, 60, 80],
    [{}, true, 0, 80],
  ])('env %j, tty %s, columns %i -> width %i', (env, isTTY, columns, want) => {
    expect(terminalWidth({ env, isTTY, columns })).toBe(want);
  });
});

describe('the status table', () => {
  const tok = (n: number, client = 'claude-code'): StatusToken => ({
    fingerprint: 'abcdefabcdef',
    provider: 'certorix',
    role: 'editor',
    createdAt: null,
    expiresAt: null,
    firstSeenAt: '2026-01-01T00:00:00Z',
    ageDays: 95,
    state: 'due',
    locations: [
      { path: '/home/u/.config/Claude/claude_desktop_config.json', client: 'claude-desktop' },
      ...Array.from({ length: n }, (_, i) => ({ path: `/home/u/code/project-${i}/.mcp.json`, client })),
      { path: '/home/u/.zshrc', client: 'shell' },
    ],
  });

  it('groups by client with counts, in first-seen order', () => {
    expect(groupLocations(tok(3).locations)).toEqual(['claude-desktop', 'claude-code (3)', 'shell']);
  });

  it('wraps at a group boundary', () => {
    expect(wrapGroups(['aaaa', 'bbbb (12)', 'cc'], 12)).toEqual(['aaaa,', 'bbbb (12),', 'cc']);
    expect(wrapGroups([], 10)).toEqual(['-']);
  });

  it.each([40, 60, 80, 200])('every line fits %i columns, whatever the number of files', (width) => {
    for (const line of renderStatusTable([tok(500)], '/home/u', { colour: true, width }).split('\n')) expect(visibleLength(line)).toBeLessThanOrEqual(Math.max(width, 54));
  });

  it('colours the state only when asked, and pads by what is visible', () => {
    const plain = renderStatusTable([tok(1)], '/home/u', { colour: false, width: 80 });
    const coloured = renderStatusTable([tok(1)], '/home/u', { colour: true, width: 80 });
    expect(plain).not.toContain('\x1b[');
    expect(coloured).toContain('\x1b[33mdue\x1b[0m');
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain); // eslint-disable-line no-control-regex
  });

  it('a token that expires brings the PROVIDER and EXPIRES columns; a Certorix token shows - there', () => {
    const gl: StatusToken = { ...tok(1), fingerprint: '0123456789ab', provider: 'gitlab', expiresAt: '2026-11-30T00:00:00.000Z' };
    const lines = renderStatusTable([tok(1), gl], '/home/u', { colour: false, width: 120 }).split('\n');
    expect(lines[0]).toMatch(/^FINGERPRINT\s+PROVIDER\s+ROLE\s+AGE\s+EXPIRES\s+STATE\s+WHERE$/);
    expect(lines[2]).toMatch(/^abcdefabcdef\s+certorix\s+editor\s+95d\s+-\s+due\s/);
    expect(lines[3]).toMatch(/^0123456789ab\s+gitlab\s+editor\s+95d\s+2026-11-30\s+due\s/);
  });

  it('--verbose lists every file under its token, tildified', () => {
    const v = renderStatusTable([tok(2)], '/home/u', { colour: false, width: 80 }, true).split('\n');
    expect(v).toContain('    ~/code/project-1/.mcp.json  (claude-code)');
    expect(v.filter((l) => l.startsWith('    ~/'))).toHaveLength(4);
  });
});

describe('arguments are never echoed', () => {
  it('a bad fingerprint value is named by its fingerprint only, with the shell-history warning when it could be a token', () => {
    const m = badFingerprintMessage('--fingerprint', TOKEN);
    expect(m).not.toContain(TOKEN);
    expect(m).toMatch(/its fingerprint is [0-9a-f]{12}/);
    expect(m).toMatch(/shell history/);
    expect(badFingerprintMessage('--fingerprint', 'xyz')).not.toMatch(/shell history/);
  });

  it('parseArgs errors lose the value', () => {
    expect(safeParseError('status', { code: 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL', message: `Unexpected argument '${TOKEN}'.` })).not.toContain(TOKEN);
    expect(safeParseError('status', { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION', message: `Unknown option '--${TOKEN}'` })).not.toContain(TOKEN);
    expect(safeParseError('status', { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION', message: "Unknown option '--bogus'" })).toContain('--bogus');
    const s = setTokenArgumentMessage();
    expect(s.message).toMatch(/stdin/);
    expect(s.message).toMatch(/shell history/);
  });
});

describe('retry progress', () => {
  it('says the attempt and the next try', () => {
    expect(retryLine({ what: 'regenerating token abc', attempt: 2, attempts: 5, delayMs: 2400, error: '503 Service Unavailable' })).toBe('regenerating token abc: attempt 2 of 5 failed (503 Service Unavailable); next try in 2 s...');
  });
});
