import { execFileSync, spawnSync } from 'node:child_process';
import { writeFile, chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, type CommandSpec } from '../../src/cli/commands.js';
import { completionModel, completionScript } from '../../src/cli/completion.js';
import { fingerprint } from '../../src/fingerprint.js';
import { CLI, makeHome, runCli, type TempHome } from '../helpers/home.js';

const hasBash = spawnSync('bash', ['-c', 'true']).status === 0;

// A command that does not exist (yet): completion must pick it up from the registry alone.
const EXTRA: CommandSpec = {
  name: 'broker-x',
  summary: 'Made up for the test: sub-commands and a pass-through.',
  usage: 'broker-x enable|disable [--state-dir DIR] -- CMD',
  details: '  --state-dir DIR  Where the state lives.\n  --dry-run        Plan only.',
  options: { 'state-dir': { type: 'string' }, 'dry-run': { type: 'boolean' } },
  positionals: true,
  words: ['enable', 'disable'],
  passthrough: true,
  load: () => Promise.reject(new Error('not loaded by completion')),
};

describe('completion scripts come from the registry', () => {
  it('every command and every option of every command is in each shell script', () => {
    for (const shell of ['bash', 'zsh', 'fish'] as const) {
      const script = completionScript(shell, [...COMMANDS, EXTRA]);
      for (const c of [...COMMANDS, EXTRA]) {
        expect(script, `${shell}: ${c.name}`).toContain(c.name);
        for (const o of Object.keys(c.options)) {
          // fish names options without the dashes (-l NAME)
          expect(script, `${shell}: ${c.name} --${o}`).toContain(shell === 'fish' ? `-l ${o}` : `--${o}`);
        }
      }
      expect(script).toContain('enable');
      expect(script).toContain('status --json');
    }
  });

  it('reads option kinds and descriptions from the spec', () => {
    const m = completionModel([...COMMANDS, EXTRA]);
    const rotate = m.find((c) => c.name === 'rotate');
    expect(rotate?.opts.find((o) => o.long === 'fingerprint')).toMatchObject({ value: 'fingerprint', desc: expect.stringContaining('Rotate only this token') });
    expect(rotate?.opts.find((o) => o.long === 'dry-run')?.value).toBeNull();
    const x = m.find((c) => c.name === 'broker-x');
    expect(x).toMatchObject({ words: ['enable', 'disable'], passthrough: true });
    expect(x?.opts.find((o) => o.long === 'state-dir')).toMatchObject({ value: 'dir', desc: 'Where the state lives' });
    // The common options are offered everywhere.
    for (const c of m) expect(c.opts.map((o) => o.long)).toEqual(expect.arrayContaining(['json', 'config', 'help']));
  });

  it('skips names that are not plain words rather than put them in a script', () => {
    const bad: CommandSpec = { ...EXTRA, name: 'x;rm -rf ~', options: { '$(id)': { type: 'boolean' } } };
    const script = completionScript('bash', [bad]);
    expect(script).not.toContain('rm -rf');
    expect(script).not.toContain('$(id)');
  });
});

describe.skipIf(!hasBash)('bash completion, run in bash against the built CLI', () => {
  let h: TempHome;
  let fp: string;
  let bin: string;
  let script: string;
  beforeAll(async () => {
    h = await makeHome();
    const token = 'ctx_live_' + 'c0mpl3t10n'.repeat(4);
    fp = fingerprint(token);
    await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['certorix-mcp'], env: { CERTORIX_API_TOKEN: token } } } }, null, 2));
    const scan = await runCli(['scan', '--offline', '--json'], { env: h.env });
    expect(scan.code, scan.stderr).toBe(0);
    // What the user has on PATH after "npm i -g": a command named mcp-token-rotator.
    bin = h.path('bin');
    await mkdir(bin, { recursive: true });
    await writeFile(path.join(bin, 'mcp-token-rotator'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    await chmod(path.join(bin, 'mcp-token-rotator'), 0o755);
    const r = await runCli(['completion', 'bash'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    script = await h.write('completion.bash', r.stdout);
  });
  afterAll(() => h.cleanup());

  /** What bash offers for the words typed so far (the last one is being completed). */
  function complete(...words: string[]): string[] {
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const out = execFileSync(
      'bash',
      ['--norc', '--noprofile', '-c', `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _mcp_token_rotator; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script],
      { env: { ...h.env, PATH: `${bin}:${h.env.PATH}` }, encoding: 'utf8', timeout: 30_000 },
    );
    return out.split('\n').filter(Boolean);
  }

  it('completes commands, options, sub-command words and tracked fingerprints', () => {
    expect(complete('mcp-token-rotator', '')).toEqual(expect.arrayContaining(COMMANDS.map((c) => c.name)));
    expect(complete('mcp-token-rotator', 're')).toEqual(['revoke-now']);
    expect(complete('mcp-token-rotator', 'rotate', '--')).toEqual(expect.arrayContaining(['--fingerprint', '--if-due', '--dry-run', '--json', '--config', '--help']));
    expect(complete('mcp-token-rotator', 'completion', '')).toEqual(['bash', 'zsh', 'fish']);
    expect(complete('mcp-token-rotator', 'rotate', '--fingerprint', '')).toEqual([fp]);
    expect(complete('mcp-token-rotator', 'history', '--fingerprint', fp.slice(0, 3))).toEqual([fp]);
    expect(complete('mcp-token-rotator', 'history', '--limit', '')).toEqual([]);
  });
});
