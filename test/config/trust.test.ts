/**
 * Issue 9 §4 (and the mcpHosts setting's shape): the settings decide where tokens are sent and which hooks run, so they are
 * trusted only if only the user (or root) can change them: the file, and every directory
 * above it up to HOME.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, mkdir, symlink } from 'node:fs/promises';
import { isHostName, parseSettings, settingsPathFacts, settingsTrustIssues, type PathFacts } from '../../src/config/settings.js';
import { currentPathEnv } from '../../src/paths.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';

const ME = 1000;
const file = (mode: number, uid = ME): PathFacts => ({ path: '/home/u/.config/mcp-token-rotator/config.json', kind: 'file', mode: 0o100000 | mode, uid });
const dir = (p: string, mode: number, uid = ME): PathFacts => ({ path: p, kind: 'dir', mode: 0o040000 | mode, uid });

describe('settingsTrustIssues (pure)', () => {
  it.each([
    ['0600 file, 0755 dirs', [file(0o600), dir('/home/u/.config', 0o755), dir('/home/u', 0o700)], []],
    ['0644 file (readable is fine)', [file(0o644)], []],
    ['root-owned file and dirs', [file(0o644, 0), dir('/etc', 0o755, 0)], []],
    ['world-writable file', [file(0o666)], ['is world-writable (mode 0666)']],
    ['group-writable file', [file(0o660)], ['is group-writable (mode 0660)']],
    ['group-writable directory above', [file(0o600), dir('/home/u/.config', 0o775)], ['directory above the settings file /home/u/.config is group-writable (mode 0775)']],
    ['world-writable HOME', [file(0o600), dir('/home/u', 0o777)], ['/home/u is world-writable (mode 0777)']],
    ['sticky world-writable dir (/tmp)', [file(0o600), dir('/tmp', 0o1777, 0)], []],
    ['file owned by another user', [file(0o600, 1001)], ['is owned by another user (uid 1001; you are uid 1000)']],
    ['directory owned by another user', [file(0o600), dir('/home/u/.config', 0o755, 1001)], ['/home/u/.config is owned by another user']],
    ['both at once', [file(0o666, 1001)], ['owned by another user', 'world-writable']],
  ] as Array<[string, PathFacts[], string[]]>)('%s', (_name, facts, want) => {
    const { issues, hint } = settingsTrustIssues(facts, ME, 'linux');
    expect(issues).toHaveLength(want.length);
    want.forEach((w, i) => expect(issues[i]).toContain(w));
    if (want.length) expect(hint).toMatch(/^Fix: /);
  });

  it('names the fix: chmod 600 for the file, chmod go-w for a directory', () => {
    expect(settingsTrustIssues([file(0o666)], ME, 'linux').hint).toContain('chmod 600 "/home/u/.config/mcp-token-rotator/config.json"');
    expect(settingsTrustIssues([dir('/home/u/.config', 0o777)], ME, 'darwin').hint).toContain('chmod go-w "/home/u/.config"');
  });

  it('Windows has no such modes: nothing is checked there', () => {
    expect(settingsTrustIssues([file(0o666, 1001)], ME, 'win32').issues).toEqual([]);
  });
});

describe('settings trust, on real files', () => {
  let h: TempHome;
  const rel = '.config/mcp-token-rotator/config.json';
  beforeAll(async () => {
    h = await makeHome();
  });
  afterAll(() => h.cleanup());

  it('settingsPathFacts: the file, then each directory up to HOME (not beyond), and through a symlink its target too', async () => {
    const pe = { ...currentPathEnv(), home: h.home };
    expect(settingsPathFacts(h.path(rel), pe).map((f) => f.path)).toEqual([h.path(rel), h.path('.config/mcp-token-rotator'), h.path('.config'), h.home]);
    await h.write('dotfiles/settings.json', '{}');
    await h.link('.config/linked.json', h.path('dotfiles/settings.json'));
    expect(settingsPathFacts(h.path('.config/linked.json'), pe).map((f) => f.path)).toEqual([
      h.path('.config/linked.json'),
      h.path('.config'),
      h.home,
      h.path('dotfiles/settings.json'),
      h.path('dotfiles'),
    ]);
  });

  it('a world-writable settings file is refused like an invalid one: exit 2, the file, its mode and the fix; doctor too', async () => {
    await chmod(h.path(rel), 0o666);
    for (const cmd of [['scan'], ['status'], ['doctor', '--offline']]) {
      const r = await runCli(cmd, { env: h.env });
      expect(r.code, `${cmd[0]}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`${h.path(rel)} is world-writable (mode 0666)`);
      expect(r.stderr).toContain(`chmod 600 "${h.path(rel)}"`);
    }
    const json = await runCli(['scan', '--json'], { env: h.env });
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'E_SETTINGS', file: h.path(rel) } });
    await chmod(h.path(rel), 0o600);
    expect((await runCli(['status'], { env: h.env })).code).toBe(0);
  });

  it('a group-writable directory above it is refused, with chmod go-w', async () => {
    await chmod(h.path('.config'), 0o775);
    const r = await runCli(['status'], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${h.path('.config')} is group-writable (mode 0775)`);
    expect(r.stderr).toContain(`chmod go-w "${h.path('.config')}"`);
    await chmod(h.path('.config'), 0o755);
  });

  it('--config through a symlink into a world-writable directory is refused', async () => {
    await mkdir(h.path('shared'), { mode: 0o777 });
    await chmod(h.path('shared'), 0o777);
    await h.write('shared/settings.json', '{}', 0o600);
    await symlink(h.path('shared/settings.json'), h.path('mine.json'));
    const r = await runCli(['status', '--config', h.path('mine.json')], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${h.path('shared')} is world-writable (mode 0777)`);
  });

  it.runIf(process.getuid?.() === 0)('a settings file owned by another user is refused (run as root, chown to uid 4242)', async () => {
    await h.write('other.json', '{}', 0o644);
    await chown(h.path('other.json'), 4242, 4242);
    const r = await runCli(['status', '--config', h.path('other.json')], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${h.path('other.json')} is owned by another user (uid 4242; you are uid 0)`);
  });
});

describe('settings mcpHosts: bare host names only', () => {
  it.each([
    ['127.0.0.1', true],
    ['mcp.corp.example', true],
    ['mcp.corp.example.', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['https://mcp.corp.example', false],
    ['mcp.corp.example:8443', false],
    ['mcp.corp.example/mcp', false],
    ['user@host', false],
    ['a..b', false],
    ['two words', false],
  ])('%s -> %s', (host, ok) => {
    expect(isHostName(host)).toBe(ok);
    const parsed = parseSettings(JSON.stringify({ mcpHosts: [host] }));
    if (ok) expect(parsed.settings?.mcpHosts).toEqual([host]);
    else expect(parsed.errors[0]).toMatch(/field "mcpHosts.0": a host name only/);
  });
});
