/**
 * Issue 16 item 10 (contract, "CLI manners"): a typo gets "did you mean" (exit 64) and is
 * echoed only when it cannot be a token; `help <command>` is `<command> --help`; declining
 * revoke-now's prompt is an answer (exit 0, nothing done), a refusal without a terminal stays
 * a usage error; scan says where it looked when it finds nothing.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeApiForFile } from '../helpers/fake-api.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';
import { runInPty } from '../helpers/pty.js';
import { COMMANDS } from '../../src/cli/commands.js';
import { editDistance, suggestCommand, unknownCommandLines } from '../../src/cli/suggest.js';

const NAMES = COMMANDS.map((c) => c.name);

describe('suggestCommand (pure)', () => {
  it.each([
    ['stauts', 'status'],
    ['statsu', 'status'],
    ['rotat', 'rotate'],
    ['roate', 'rotate'],
    ['revoke', 'revoke-now'],
    ['revokenow', 'revoke-now'],
    ['settoken', 'set-token'],
    ['histroy', 'history'],
    ['install', 'install-service'],
    ['uninstall', 'uninstall-service'],
    ['brokr', 'broker'],
    ['doctr', 'doctor'],
    ['SCAN', 'scan'],
    ['daemons', 'daemon'],
    ['x', null],
    ['hello', null],
    ['frobnicate', null],
    ['st', 'status'], // a unique prefix
    ['s', null], // one letter: scan, status, set-token
  ])('%j -> %j', (word, want) => {
    expect(suggestCommand(word, NAMES)).toBe(want);
  });

  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('never echoes a word that could be a token', () => {
    const token = 'ctx_live_' + 'Q'.repeat(32);
    const lines = unknownCommandLines(token, NAMES).join('\n');
    expect(lines).not.toContain(token);
    expect(lines).toContain('not shown');
    expect(lines).toContain('treat it as leaked');
    expect(unknownCommandLines('rotat', NAMES)[0]).toBe('Unknown command "rotat". Did you mean "rotate"?');
  });
});

describe('the CLI', () => {
  const api = fakeApiForFile();
  let h: TempHome;
  beforeAll(async () => {
    h = await makeHome(api().url);
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('a typo gets "did you mean" and exit 64', async () => {
    const r = await runCli(['stauts'], { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('Unknown command "stauts". Did you mean "status"?');
    expect(r.stderr).toContain('mcp-token-rotator status --help');
    expect(r.stdout).toBe('');
  });

  it('a pasted token as the command is not echoed', async () => {
    const token = api().addToken({});
    const r = await runCli([token], { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stderr + r.stdout).not.toContain(token);
    expect(r.stderr).toContain('not shown');
  });

  it('help <command> prints <command> --help; help <typo> suggests', async () => {
    for (const name of ['rotate', 'set-token', 'broker']) {
      const viaHelp = await runCli(['help', name], { env: h.env });
      const viaFlag = await runCli([name, '--help'], { env: h.env });
      expect(viaHelp.code).toBe(0);
      expect(viaHelp.stdout).toBe(viaFlag.stdout);
      expect(viaHelp.stdout).toContain(`mcp-token-rotator ${name}`);
    }
    const general = await runCli(['help'], { env: h.env });
    expect(general.code).toBe(0);
    expect(general.stdout).toContain('revoke-now');
    const typo = await runCli(['help', 'rotat'], { env: h.env });
    expect(typo.code).toBe(64);
    expect(typo.stderr).toContain('Did you mean "rotate"?');
  });

  it('scan that finds nothing lists the files and patterns it checked', async () => {
    await h.settings({ extraConfigs: ['~/code/*/.mcp.json'] });
    const r = await runCli(['scan', '--offline'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No Certorix token found\. Checked these \d+ files and patterns:/);
    for (const p of ['~/.cursor/mcp.json', '~/.config/Claude/claude_desktop_config.json', '~/.codex/config.toml', '~/.bashrc', '~/code/*/.mcp.json']) expect(r.stdout).toContain(`  ${p}\n`);
    const j = await runCli(['scan', '--offline', '--json'], { env: h.env });
    const doc = JSON.parse(j.stdout) as { tokens: unknown[]; looked: string[] };
    expect(doc.tokens).toEqual([]);
    expect(doc.looked).toContain('~/code/*/.mcp.json');
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, broker: { store: 'file' } });
  });

  describe('revoke-now without --yes', () => {
    let token: string;
    let config: string;
    beforeAll(async () => {
      token = api().addToken({ email: 'you@example.com', role: 'editor' });
      config = await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: token } } } }, null, 2));
      const scan = await runCli(['scan'], { env: h.env });
      expect(scan.code, scan.stderr).toBe(0);
    });

    it('declined on a terminal: exit 0, "Nothing was done", nothing regenerated or written', async () => {
      const before = await readFile(config, 'utf8');
      const r = await runInPty(['revoke-now'], h.env, [{ when: '[y/N]', send: 'n\r' }]);
      expect(r.output).toContain('[y/N]');
      expect(r.output).toContain('Nothing was done');
      expect(r.code).toBe(0);
      expect(api().regenerateCount).toBe(0);
      expect(await readFile(config, 'utf8')).toBe(before);
      expect(api().isLive(token)).toBe(true);
    });

    it('without a terminal: refused as a usage error (64), naming --yes', async () => {
      const r = await runCli(['revoke-now'], { env: h.env });
      expect(r.code).toBe(64);
      expect(r.stderr).toContain('revoke-now --yes');
      expect(api().regenerateCount).toBe(0);
    });
  });
});
