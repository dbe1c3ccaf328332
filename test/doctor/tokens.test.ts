import { describe, expect, it } from 'vitest';
import { checkRetiredPlanted, checkTokenState, type TokenFacts } from '../../src/doctor/tokens.js';

const FP = 'abcdefabcdef';
const t = (o: Partial<TokenFacts>): TokenFacts => ({ fingerprint: FP, role: 'editor', state: 'ok', ageDays: 3, files: ['/h/.cursor/mcp.json'], ...o });

describe('doctor: token age that the API has not told', () => {
  it.each<[string, Partial<TokenFacts>, string, RegExp]>([
    ['known age', { ageDays: 3 }, 'token-age', /is 3 days old/],
    ['unknown age: says so, with the fix', { ageDays: null }, 'token-age-unknown', /age of token abcdefabcdef is unknown/],
    ['unknown age but due by its lower bound', { ageDays: null, minAgeDays: 93, state: 'due' }, 'token-due', /at least 93 days old/],
  ])('%s', (_n, o, id, msg) => {
    const f = checkTokenState(t(o), 90);
    expect(f.id).toBe(id);
    expect(f.message).toMatch(msg);
    expect(f.message).not.toMatch(/\b0 days\b/);
    if (id === 'token-age-unknown') expect(f.fix).toMatch(/mcp-token-rotator scan/);
  });

  it('a refused heal is listed with the file, and when the daemon saw it', () => {
    const f = checkRetiredPlanted(FP, '/h/code/x/.mcp.json', 'Retired token appeared.', 'Remove it.', '2026-12-01T10:00:00.000Z');
    expect(f).toMatchObject({ id: 'token-retired-unexpected', severity: 'warn', file: '/h/code/x/.mcp.json', fingerprint: FP });
    expect(f.message).toContain('2026-12-01T10:00:00.000Z');
  });
});
