/* eslint-disable no-control-regex -- the escape codes under test */
/**
 * Issue 9 §8: control characters in paths and names are escaped in terminal output. A
 * config whose directory is named with escape codes must not retitle, clear or rewrite the
 * terminal when `scan` or `status` lists it; JSON output keeps the exact path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';
import { escapeControls, termSafe } from '../../src/terminal.js';
import { table } from '../../src/cli/output.js';
import { prettySink } from '../../src/log.js';

describe('escaping (pure)', () => {
  it.each([
    ['plain/path.json', 'plain/path.json', 'plain/path.json'],
    ['a\x1b]0;pwned\x07b', 'a\\x1b]0;pwned\\x07b', 'a\\x1b]0;pwned\\x07b'],
    ['clear\x1b[2J\x1b[H', 'clear\\x1b[2J\\x1b[H', 'clear\\x1b[2J\\x1b[H'],
    ['over\rwrite', 'over\\rwrite', 'over\\rwrite'],
    ['two\nlines\tx', 'two\nlines\tx', 'two\\nlines\\tx'],
    ['csi\u009b31m del\u007f bs\b', 'csi\\x9b31m del\\x7f bs\\x08', 'csi\\x9b31m del\\x7f bs\\x08'],
    ['bidi\u202egnp.exe', 'bidi\\u202egnp.exe', 'bidi\\u202egnp.exe'],
    ['C:\\Users\\me\\é', 'C:\\Users\\me\\é', 'C:\\Users\\me\\é'],
  ])('%j', (input, message, value) => {
    expect(escapeControls(input)).toBe(message);
    expect(termSafe(input)).toBe(value);
  });

  it('a table cell cannot start a fake row', () => {
    expect(table(['A', 'B'], [['x\ny', 'z']]).split('\n')).toHaveLength(3);
  });

  it('readable daemon log lines escape message and fields', () => {
    let got = '';
    prettySink({ write: (s: string) => (got += s) }).write(JSON.stringify({ time: '2026-01-01T00:00:00.000Z', level: 40, msg: 'healed \x1b[2J', file: '/h/\x1b]0;x\x07' }));
    expect(got).not.toMatch(/[\x1b\x07]/);
    expect(got).toContain('file=/h/\\x1b]0;x\\x07');
  });
});

describe('a config named with escape codes', () => {
  let api: FakeCertorix;
  let h: TempHome;
  const evil = 'proj-\x1b]0;pwned\x07\x1b[2J\x1b[1;1H\rfake\nline';
  beforeAll(async () => {
    api = await startFakeCertorix();
    h = await makeHome(api.url);
    const tok = api.addToken({ email: 'esc@example.com', role: 'editor', ageDays: 3 });
    await h.write(`${evil}/.mcp.json`, JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: tok } } } }));
    await h.write(`${evil}-broken/.mcp.json`, '{ oops');
    await h.settings({ extraConfigs: ['~/proj-*/.mcp.json'], retry: { attempts: 2, baseMs: 5, maxMs: 20 } });
  });
  afterAll(async () => {
    await h.cleanup();
    await api.close();
  });

  it('scan and status show it escaped, on one line; --json keeps the exact path', async () => {
    const scan = await runCli(['scan'], { env: h.env });
    expect(scan.code).toBe(2); // the broken one
    const status = await runCli(['status', '--verbose'], { env: h.env });
    expect(status.code, status.stderr).toBe(0);
    for (const text of [scan.stdout, scan.stderr, status.stdout]) {
      expect(text).not.toMatch(/[\x1b\x07\r]/);
      expect(text).toContain('proj-\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;1H\\rfake');
    }
    // Listing lines and table cells escape the line break too: no line starts with "line".
    for (const text of [scan.stdout, status.stdout]) expect(text.split('\n').some((l) => l.startsWith('line'))).toBe(false);
    const json = await runCli(['scan', '--json'], { env: h.env });
    const doc = JSON.parse(json.stdout) as { configs: Array<{ path: string }> };
    expect(doc.configs.map((c) => c.path)).toContain(h.path(`${evil}/.mcp.json`));
  });
});
