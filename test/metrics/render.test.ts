/**
 * The metrics renderer (issue 16 item 11): valid Prometheus text exposition format (HELP and
 * TYPE once per family, before its samples; label values escaped), the gauges an operator
 * alerts on, no sample for an unknown fact, and never a token value.
 */
import { describe, expect, it } from 'vitest';
import { escapeHelp, escapeLabelValue, renderMetrics, type MetricsInput, type MetricsToken } from '../../src/metrics/render.js';

/**
 * A strict reader of the text format: comment lines are HELP/TYPE with a valid metric name,
 * each family's TYPE comes once and before its samples, sample lines are
 * name{label="value",...} value with valid names, escapes and numbers. Returns the samples.
 */
function parseExposition(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  expect(text.endsWith('\n')).toBe(true);
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of text.slice(0, -1).split('\n')) {
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (m) {
      expect(helped.has(m[1]!), `one HELP for ${m[1]}`).toBe(false);
      expect(m[2]).not.toMatch(/\n/);
      helped.add(m[1]!);
      continue;
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (m) {
      expect(typed.has(m[1]!), `one TYPE for ${m[1]}`).toBe(false);
      typed.set(m[1]!, m[2]!);
      continue;
    }
    expect(line.startsWith('#'), `a comment that is not HELP/TYPE: ${line}`).toBe(false);
    m = new RegExp(`^(${NAME})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? ([-+]?(?:\\d+(?:\\.\\d+)?(?:e[-+]?\\d+)?|Inf|NaN))$`).exec(line);
    expect(m, `a valid sample line: ${line}`).not.toBeNull();
    const name = m![1]!;
    expect(typed.has(name), `TYPE of ${name} before its samples`).toBe(true);
    const labels: Record<string, string> = {};
    for (const l of (m![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name, labels, value: Number(m![3]) });
  }
  for (const name of typed.keys()) expect(helped.has(name), `HELP for ${name}`).toBe(true);
  return samples;
}

const tok = (o: Partial<MetricsToken> = {}): MetricsToken => ({
  fingerprint: 'aaaaaaaaaaaa',
  provider: 'certorix',
  state: 'ok',
  ageDays: 10,
  expiresAt: null,
  lastCheckedAt: '2026-12-01T10:00:00.000Z',
  ...o,
});
const input = (o: Partial<MetricsInput> = {}): MetricsInput => ({ tokens: [], lastRotationAt: null, rotationFailures: 0, healRefusals: 0, ...o });
const value = (text: string, name: string, labels: Record<string, string> = {}) =>
  parseExposition(text).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('renderMetrics', () => {
  it.each<[string, MetricsInput, Array<[string, Record<string, string>, number | undefined]>]>([
    [
      'no token: every family declared, counts 0, no per-token sample',
      input(),
      [
        ['mcp_token_rotator_tokens', {}, 0],
        ['mcp_token_rotator_rotation_failures_total', {}, 0],
        ['mcp_token_age_days', {}, undefined],
        ['mcp_token_rotator_last_rotation_success_timestamp_seconds', {}, undefined],
      ],
    ],
    [
      'a due token with a known age and a last check',
      input({ tokens: [tok({ state: 'due', ageDays: 95 })] }),
      [
        ['mcp_token_age_days', { fingerprint: 'aaaaaaaaaaaa', provider: 'certorix' }, 95],
        ['mcp_token_state', { fingerprint: 'aaaaaaaaaaaa', state: 'due' }, 1],
        ['mcp_token_state', { fingerprint: 'aaaaaaaaaaaa', state: 'ok' }, 0],
        ['mcp_token_state', { fingerprint: 'aaaaaaaaaaaa', state: 'invalid' }, 0],
        ['mcp_token_state', { fingerprint: 'aaaaaaaaaaaa', state: 'rotating' }, 0],
        ['mcp_token_last_check_timestamp_seconds', { fingerprint: 'aaaaaaaaaaaa' }, Date.parse('2026-12-01T10:00:00Z') / 1000],
        ['mcp_token_expiry_timestamp_seconds', {}, undefined],
      ],
    ],
    [
      'unknown age and never checked: no made-up 0',
      input({ tokens: [tok({ ageDays: null, lastCheckedAt: null })] }),
      [
        ['mcp_token_age_days', {}, undefined],
        ['mcp_token_last_check_timestamp_seconds', {}, undefined],
        ['mcp_token_state', { state: 'ok' }, 1],
      ],
    ],
    [
      'an expiring GitHub token, an invalid one, rotations and failures',
      input({
        tokens: [tok({ fingerprint: 'bbbbbbbbbbbb', provider: 'github', ageDays: null, expiresAt: '2027-01-31T12:00:00Z' }), tok({ state: 'invalid' })],
        lastRotationAt: '2026-11-30T08:00:00.500Z',
        rotationFailures: 3,
        healRefusals: 1,
      }),
      [
        ['mcp_token_expiry_timestamp_seconds', { fingerprint: 'bbbbbbbbbbbb', provider: 'github' }, Date.parse('2027-01-31T12:00:00Z') / 1000],
        ['mcp_token_state', { fingerprint: 'aaaaaaaaaaaa', state: 'invalid' }, 1],
        ['mcp_token_rotator_tokens', {}, 2],
        ['mcp_token_rotator_last_rotation_success_timestamp_seconds', {}, Math.floor(Date.parse('2026-11-30T08:00:00.500Z') / 1000)],
        ['mcp_token_rotator_rotation_failures_total', {}, 3],
        ['mcp_token_rotator_heal_refusals_total', {}, 1],
      ],
    ],
  ])('%s', (_name, inp, want) => {
    const text = renderMetrics(inp);
    parseExposition(text);
    for (const [name, labels, v] of want) expect(value(text, name, labels), `${name} ${JSON.stringify(labels)}`).toBe(v);
  });

  it('declares the types operators rely on', () => {
    const text = renderMetrics(input());
    expect(text).toContain('# TYPE mcp_token_age_days gauge\n');
    expect(text).toContain('# TYPE mcp_token_state gauge\n');
    expect(text).toContain('# TYPE mcp_token_expiry_timestamp_seconds gauge\n');
    expect(text).toContain('# TYPE mcp_token_rotator_last_rotation_success_timestamp_seconds gauge\n');
    expect(text).toContain('# TYPE mcp_token_rotator_rotation_failures_total counter\n');
  });

  it('escapes label values and HELP text as the format requires', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(escapeHelp('a\\b\nc "q"')).toBe('a\\\\b\\nc "q"');
    const text = renderMetrics(input({ tokens: [tok({ provider: 'we"ird\\pro\nvider' })] }));
    const s = parseExposition(text).find((x) => x.name === 'mcp_token_age_days');
    expect(s?.labels.provider).toBe('we"ird\\pro\nvider');
  });

  it('orders tokens stably (provider, fingerprint), so an unchanged state gives the same bytes', () => {
    const a = tok({ fingerprint: '222222222222' });
    const b = tok({ fingerprint: '111111111111' });
    expect(renderMetrics(input({ tokens: [a, b] }))).toBe(renderMetrics(input({ tokens: [b, a] })));
    const ages = parseExposition(renderMetrics(input({ tokens: [a, b] }))).filter((s) => s.name === 'mcp_token_age_days');
    expect(ages.map((s) => s.labels.fingerprint)).toEqual(['111111111111', '222222222222']);
  });
});
