/**
 * One hostile or huge config cannot stop the tool: the locators stay linear, bounded in
 * depth, alias expansion and output, and never throw (issue 9 §3). Plus settings
 * `mcpHosts`, which widens the hosts whose bearer values are ours.
 */
import { describe, expect, it } from 'vitest';
import { isCertorixUrl, isLimitError, locateTokens, MAX_SITES, type FileFormat } from '../../src/clients/formats.js';
import { replaceToken } from '../../src/clients/edit.js';
import { jsonShape, lineCol } from '../../src/clients/locate-json.js';

const T = 'crtx_4hV9qLm2Xz7Rb1Nw8KpT3sYd';
const K60 = 60 * 1024;

/** Locates and times; a linear locator does any 60 KB input in well under a second even on a busy machine. */
function timed(text: string, format: FileFormat) {
  const t0 = performance.now();
  const r = locateTokens(text, format);
  return { ...r, ms: performance.now() - t0 };
}

const remote = (arg: string) => JSON.stringify({ mcpServers: { x: { command: 'npx', args: ['-y', 'mcp-remote', 'https://mcp.certorix.com/mcp', '--header', arg] } } });

describe('adversarial 60 KB configs stay fast (each regex that was quadratic)', () => {
  // Each of these took 0.4 to 6 s before; the bound leaves a wide margin for a loaded CI box.
  const cases: Array<[string, FileFormat, string]> = [
    ['mcp-remote header arg: a long run of blanks (ARG_HEADER)', 'json', remote(' '.repeat(K60) + 'x')],
    ['mcp-remote header arg: blanks before "--header=" (ARG_HEADER_NAME)', 'json', remote('\t'.repeat(K60) + '${X}')],
    ['mcp-remote header arg: thousands of ${VAR} (bearer look-behind)', 'json', remote('Authorization:' + '${AUTH_HEADER}'.repeat(K60 / 14))],
    ['an unterminated block comment of many "/*" (JSONC blank check)', 'jsonc', '/*' + ' /*'.repeat(K60 / 3)],
    ['thousands of duplicate keys (line:column of each warning)', 'json', '{' + Array(K60 / 6).fill('"a":1').join(',\n') + '}'],
    ['fish: "set" thousands of times before the name (set ... NAME)', 'fish', 'set' + ' set'.repeat(K60 / 4) + ' CERTORIX_API_TOKENx\n'],
    ['fish: thousands of set options', 'fish', 'set' + ' -x'.repeat(K60 / 3) + ' CERTORIX_API_TOKENx\n'],
    ['shell: thousands of export options', 'shell', 'export' + ' -x'.repeat(K60 / 3) + ' CERTORIX_API_TOKEN\n'],
    ['dotenv: a value of thousands of words', 'dotenv', 'CERTORIX_API_TOKEN=' + 'a '.repeat(K60 / 2) + 'x\n'],
  ];
  it.each(cases)('%s', (_name, format, text) => {
    expect(text.length).toBeGreaterThanOrEqual(K60 * 0.9);
    const r = timed(text, format);
    expect(r.ms).toBeLessThan(1500);
    expect(r.warnings.length).toBeLessThanOrEqual(21);
    expect(r.errors.length).toBeLessThanOrEqual(21);
  });

  it('a duplicate-key YAML map is reported once per key, not compared pairwise', () => {
    const r = timed(Array(K60 / 8).fill('a: 1').join('\n'), 'yaml');
    expect(r.errors[0]).toMatch(/^YAML parse error at 2:1: DUPLICATE_KEY$/);
    expect(r.errors.length).toBeLessThanOrEqual(21);
    expect(r.ms).toBeLessThan(5000); // yaml itself is slow (about 1 s per 100 KB under load), but linear
  });
});

describe('depth, size and expansion are bounded; the locator never throws', () => {
  it('6,000 nested arrays (12 KB) are that file\'s error, not a stack overflow', () => {
    for (const format of ['json', 'jsonc'] as const) {
      const r = timed('['.repeat(6000) + ']'.repeat(6000), format);
      expect(r.errors).toEqual(['JSON nested 6000 levels deep, more than the 256 a config may be']);
      expect(r.ms).toBeLessThan(1000);
    }
    expect(isLimitError(locateTokens('['.repeat(300) + ']'.repeat(300), 'json').errors[0] ?? '')).toBe(true);
    expect(isLimitError(locateTokens('{ "a": ', 'json').errors[0] ?? '')).toBe(false);
    const inside = `{"mcpServers":{"x":{"env":{"CERTORIX_API_TOKEN":"${T}"}}},"deep":${'['.repeat(300)}${']'.repeat(300)}}`;
    expect(locateTokens(inside, 'json').errors[0]).toMatch(/nested 301 levels/);
  });

  it('brackets inside strings and comments do not count as nesting', () => {
    const text = `// [[[[ {{{{\n{"a": "[[[[[[", /* {{{{{ */ "b": ["]]]", "\\"[["]}`;
    expect(jsonShape(text)).toEqual({ blank: false, depth: 2, values: 4 });
    expect(jsonShape('  // only a comment\n /* and another */ ').blank).toBe(true);
    expect(jsonShape('/* unterminated').blank).toBe(false);
  });

  it('a JSON file of millions of values is refused before the tree is built', () => {
    const r = timed('[' + Array(1_100_000).fill('1').join(',') + ']', 'json');
    expect(r.errors[0]).toMatch(/about 1100000 values, more than the 1000000/);
  });

  it('a YAML alias bomb (aliases of aliases, 14 KB) is searched in full, fast, and the token beside it found', () => {
    let text = 'a0: &a0 [' + Array(300).fill('"lol"').join(', ') + ']\n';
    for (let i = 1; i < 9; i++) text += `a${i}: &a${i} [` + Array(300).fill(`*a${i - 1}`).join(', ') + ']\n';
    text += `extensions:\n  certorix:\n    envs:\n      CERTORIX_API_TOKEN: ${T}\n`;
    const r = timed(text, 'yaml');
    expect(r.errors).toEqual([]);
    expect(r.sites.map((s) => s.token)).toEqual([T]);
    expect(r.ms).toBeLessThan(5000);
    // The edit's own check expands with yaml's maxAliasCount guard: refused, not hung.
    expect(() => replaceToken(text, 'yaml', T, 'crtx_NewToken0123456789abcdef')).toThrow(/no longer parses/);
  });

  it('a token reached through an alias is still found; an alias inside its own anchor is not followed', () => {
    const shared = `common: &env\n  CERTORIX_API_TOKEN: ${T}\nextensions:\n  a:\n    envs: *env\n  b:\n    envs: *env\n`;
    const r = locateTokens(shared, 'yaml');
    expect(r.sites.map((s) => s.keyPath)).toEqual([
      ['extensions', 'a', 'envs', 'CERTORIX_API_TOKEN'],
      ['extensions', 'b', 'envs', 'CERTORIX_API_TOKEN'],
    ]);
    expect(locateTokens('a: &a [*a]\nmcpServers: *a\n', 'yaml')).toEqual({ sites: [], errors: [], warnings: [] });
  });

  it('one list shared by thousands of entries through aliases is refused, not walked a billion times', () => {
    const list = `big: &big [${Array(20_000).fill('"mcp-remote"').join(', ')}]\n`;
    const entries = Array.from({ length: 3000 }, (_, i) => `  s${i}: {command: npx, args: *big}`).join('\n');
    const r = timed(`${list}mcpServers:\n${entries}\n`, 'yaml');
    expect(r.errors[0]).toMatch(/too many server entries and arguments/);
  });

  it('more token sites than any config has is an error, and warnings are capped', () => {
    const lines = Array.from({ length: MAX_SITES + 1 }, (_, i) => `CERTORIX_API_TOKEN=crtx_tok${i}`).join('\n');
    expect(locateTokens(lines, 'dotenv').errors).toEqual([`more than ${MAX_SITES} token sites`]);
    const r = locateTokens('{' + Array(500).fill('"a":1').join(',') + '}', 'json');
    expect(r.warnings).toHaveLength(21);
    expect(r.warnings[20]).toBe('(479 more warnings not shown)');
  });

  it('line:column stays exact with the line index', () => {
    const text = 'ab\ncd\r\n\nxyz';
    expect([0, 2, 3, 5, 7, 8, 10, 99].map((o) => lineCol(text, o))).toEqual(['1:1', '1:3', '2:1', '2:3', '3:1', '4:1', '4:3', '4:4']);
  });
});

describe('settings mcpHosts: more hosts whose bearer is a Certorix token', () => {
  it.each([
    ['https://mcp.certorix.com/mcp', [], true],
    ['https://certorix.com./x', [], true],
    ['https://evilcertorix.com/mcp', [], false],
    ['http://127.0.0.1:8931/mcp', [], false],
    ['http://127.0.0.1:8931/mcp', ['127.0.0.1'], true],
    ['https://MCP.Corp.Example/mcp', ['mcp.corp.example.'], true],
    ['https://sub.mcp.corp.example/mcp', ['mcp.corp.example'], false],
    ['http://[::1]:9000/mcp', ['::1'], true],
    ['http://[::1]:9000/mcp', ['[::1]'], true],
    ['ftp://127.0.0.1/mcp', ['127.0.0.1'], false],
    ['not a url', ['127.0.0.1'], false],
  ] as Array<[string, string[], boolean]>)('%s with %j -> %s', (url, hosts, want) => {
    expect(isCertorixUrl(url, hosts)).toBe(want);
  });

  const header = JSON.stringify({ mcpServers: { local: { type: 'http', url: 'http://127.0.0.1:8931/mcp', headers: { Authorization: `Bearer ${T}` } } } });
  const bridge = JSON.stringify({ mcpServers: { local: { command: 'npx', args: ['-y', 'mcp-remote', 'http://127.0.0.1:8931/mcp', '--header', `Authorization: Bearer ${T}`] } } });
  const toml = `[mcp_servers.local]\nurl = "http://127.0.0.1:8931/mcp"\nhttp_headers = { Authorization = "Bearer ${T}" }\n`;
  it.each([
    ['a header', header, 'json', 'header'],
    ['an mcp-remote bridge', bridge, 'json', 'args'],
    ['a Codex TOML header', toml, 'toml', 'header'],
  ] as Array<[string, string, FileFormat, string]>)('%s to a listed host is found; not without the setting', (_n, text, format, kind) => {
    expect(locateTokens(text, format, { mcpHosts: [] }).sites).toEqual([]);
    const sites = locateTokens(text, format, { mcpHosts: ['127.0.0.1'] }).sites;
    expect(sites.map((s) => [s.kind, s.token])).toEqual([[kind, T]]);
  });
});
