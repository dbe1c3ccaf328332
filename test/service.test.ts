import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RotatorError } from '../src/errors.js';
import {
  LAUNCHD_LABEL,
  NOT_FOUND,
  SYSTEMD_UNIT,
  installService,
  packageRoot,
  planInstall,
  planUninstall,
  renderUnit,
  serviceJson,
  shellJoin,
  systemdExecWord,
  templatePath,
  uninstallService,
  serviceActive,
  xmlEscape,
  type CommandRunner,
} from '../src/service/service.js';

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const ODD = '/tmp/odd dir/R&D <x> "q" \'s\' $HOME 100%';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'mtr-svc-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** A command runner that records argv and answers from a script. */
function recorder(answer: (cmd: string[]) => { code: number; stderr: string } = () => ({ code: 0, stderr: '' })) {
  const calls: string[][] = [];
  const run: CommandRunner = async (cmd) => {
    calls.push(cmd);
    return answer(cmd);
  };
  return { calls, run };
}

/** launchctl print of a loaded agent whose process runs (what install waits for). */
const RUNNING = { code: 0, stderr: '', stdout: 'gui/501/com.mcp-token-rotator.daemon = {\n\tactive count = 1\n\tstate = running\n}\n' };
const macOk = (cmd: string[]) => (cmd[1] === 'print' ? RUNNING : { code: 0, stderr: '' });

/** A fake built CLI (install refuses a bin that does not exist). */
function fakeBin(dir: string): string {
  const bin = path.join(dir, 'pkg & co', 'dist', 'main.js');
  mkdirSync(path.dirname(bin), { recursive: true });
  writeFileSync(bin, '// fake\n');
  return bin;
}

// ------------------------------------------------------------------------------------------
describe('templates', () => {
  it('are found from the package root whether running from src/ or dist/src/', () => {
    expect(existsSync(path.join(packageRoot(), 'package.json'))).toBe(true);
    expect(existsSync(templatePath('systemd'))).toBe(true);
    expect(existsSync(templatePath('launchd'))).toBe(true);
  });

  it('the systemd template has the pinned directives', () => {
    const t = readFileSync(templatePath('systemd'), 'utf8');
    for (const line of [
      'ExecStart=@NODE@@NODEOPTS@ @BIN@ daemon',
      'Restart=on-failure',
      'RestartSec=10',
      'KillSignal=SIGTERM',
      'TimeoutStopSec=15',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'LimitCORE=0',
      'NoNewPrivileges=yes',
      'UMask=0077',
      'ProtectSystem=strict',
      'ReadWritePaths=%h',
      'WantedBy=default.target',
    ]) {
      expect(t).toContain(line);
    }
    expect(t).toMatch(/^Description=.+/m);
    expect(t).toMatch(/^Documentation=.+/m);
  });
});

// ------------------------------------------------------------------------------------------
describe('renderUnit: systemd', () => {
  const vars = { node: '/usr/bin/node', bin: ODD + '/main.js', home: '/home/u', logDir: '/home/u' };

  it('quotes and escapes odd paths (spaces, &, quotes, $, %)', () => {
    const unit = renderUnit('systemd', vars);
    const exec = unit.split('\n').find((l) => l.startsWith('ExecStart='));
    expect(exec).toBe(`ExecStart="/usr/bin/node" "--max-semi-space-size=1" ${systemdExecWord(vars.bin)} daemon`);
    // The executable gets no $ expansion (only specifiers); arguments get both.
    expect(renderUnit('systemd', { ...vars, node: '/opt/$x 100%/node' })).toContain('ExecStart="/opt/$x 100%%/node" ');
    expect(exec).toContain('R&D');
    expect(exec).toContain('\\"q\\"');
    expect(exec).toContain('$$HOME');
    expect(exec).toContain('100%%');
    expect(unit).not.toMatch(/@(NODE|BIN|ARGS|ENVIRONMENT|RWPATHS|DOCURL)@/);
    // The Documentation URL is ASCII, without spaces, and its % signs are doubled.
    const doc = unit.split('\n').find((l) => l.startsWith('Documentation='))!;
    expect(doc).toMatch(/^Documentation=file:\/\/\S+README\.md$/);
    expect(doc.replace(/%%/g, '')).not.toContain('%');
  });

  it('passes --config, XDG variables and extra writable paths', () => {
    const unit = renderUnit('systemd', {
      ...vars,
      args: ['--config', '/home/u/my settings.json'],
      env: { XDG_STATE_HOME: '/srv/state dir' },
      readWritePaths: ['/srv/state dir'],
    });
    expect(unit).toContain('ExecStart="/usr/bin/node" "--max-semi-space-size=1" ' + systemdExecWord(vars.bin) + ' daemon "--config" "/home/u/my settings.json"');
    expect(unit).toContain('Environment="XDG_STATE_HOME=/srv/state dir"');
    expect(unit).toContain('ReadWritePaths=%h "-/srv/state dir"');
  });

  it('leaves no blank Environment placeholder line when there is none', () => {
    const unit = renderUnit('systemd', vars);
    expect(unit).not.toContain('Environment=');
    expect(unit).toMatch(/daemon\nRestart=on-failure/);
  });

  it.each([
    ['a newline', { node: '/usr/bin/no\nde' }],
    ['a relative node', { node: 'node' }],
    ['a relative bin', { bin: 'dist/main.js' }],
    ['a NUL', { bin: '/a\0b' }],
    ['a node path with a quote (systemd refuses such executables)', { node: '/opt/it\'s/node' }],
    ['a node path with a backslash', { node: '/opt/a\\b/node' }],
  ])('refuses %s', (_what, bad) => {
    expect(() => renderUnit('systemd', { ...vars, ...bad })).toThrow(RotatorError);
  });

  it('does not re-expand placeholders that appear inside a substituted path', () => {
    const unit = renderUnit('systemd', { ...vars, bin: '/opt/@NODE@/@ARGS@/main.js' });
    expect(unit).toContain('"/opt/@NODE@/@ARGS@/main.js" daemon');
  });
});

describe('systemd-analyze verify', () => {
  const have = which('systemd-analyze');
  it.skipIf(!have)('accepts the rendered unit with odd paths (skipped: systemd-analyze not installed)', () => {
    // verify checks that the executable exists, so a node reached through an odd directory
    // proves the executable's escaping round-trips (a wrong %% or $$ would not be found).
    const nodeDir = path.join(tmp, 'odd node', 'R&D $x 100%h ;<>');
    mkdirSync(nodeDir, { recursive: true });
    const node = path.join(nodeDir, 'node');
    symlinkSync(process.execPath, node);
    const binDir = path.join(tmp, 'odd dir', 'R&D $x 100%');
    mkdirSync(binDir, { recursive: true });
    const bin = path.join(binDir, 'main.js');
    writeFileSync(bin, '');
    const unitDir = path.join(tmp, 'units');
    mkdirSync(unitDir);
    const unitFile = path.join(unitDir, SYSTEMD_UNIT);
    writeFileSync(
      unitFile,
      renderUnit('systemd', {
        node,
        bin,
        home: tmp,
        logDir: tmp,
        args: ['--config', path.join(tmp, 'my settings.json')],
        env: { XDG_STATE_HOME: path.join(tmp, 'st ate') },
        readWritePaths: ['/srv/not there'],
      }),
    );
    const r = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'notice' } });
    // Lines about other units on this machine are not ours to judge; only ours must be clean.
    const ours = (r.stderr + r.stdout)
      .split('\n')
      .filter((l) => l.includes(SYSTEMD_UNIT) || l.includes(unitFile));
    expect(ours, ours.join('\n')).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------
describe('renderUnit: launchd', () => {
  const vars = { node: '/opt/homebrew/bin/node', bin: ODD + '/main.js', home: '/Users/u & me', logDir: '/Users/u & me/Library/Logs/mcp-token-rotator' };

  it('XML-escapes every value and keeps the pinned keys', () => {
    const plist = renderUnit('launchd', { ...vars, args: ['--config', '/Users/u & me/<s>.json'] });
    expect(plist).toContain(`<string>${xmlEscape(vars.bin)}</string>`);
    expect(plist).toContain('R&amp;D &lt;x&gt; &quot;q&quot; &apos;s&apos;');
    expect(plist).toContain('<string>/Users/u &amp; me/&lt;s&gt;.json</string>');
    expect(plist).not.toMatch(/&(?!amp;|lt;|gt;|quot;|apos;)/);
    expect(plist).toContain(`<string>${LAUNCHD_LABEL}</string>`);
    expect(plist).toContain('<string>/Users/u &amp; me/Library/Logs/mcp-token-rotator/mcp-token-rotator.log</string>');
    expect(plist).toContain('<string>/Users/u &amp; me/Library/Logs/mcp-token-rotator/mcp-token-rotator.err.log</string>');
    expect(plist).toContain('<string>/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin</string>');
  });

  it('is a well-formed plist with the expected structure (minimal XML check)', () => {
    const plist = renderUnit('launchd', vars);
    const doc = parsePlist(plist);
    expect(doc.Label).toBe(LAUNCHD_LABEL);
    expect(doc.ProgramArguments).toEqual([vars.node, '--max-semi-space-size=1', vars.bin, 'daemon']);
    expect(doc.RunAtLoad).toBe(true);
    expect(doc.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(doc.ProcessType).toBe('Background');
    expect(doc.StandardOutPath).toBe(vars.logDir + '/mcp-token-rotator.log');
    expect(doc.StandardErrorPath).toBe(vars.logDir + '/mcp-token-rotator.err.log');
    expect(doc.Umask).toBe(0o077);
    expect(doc.HardResourceLimits).toEqual({ Core: 0 });
    expect(doc.SoftResourceLimits).toEqual({ Core: 0 });
    expect((doc.EnvironmentVariables as Record<string, string>).PATH).toContain('/usr/bin');
  });

  const plistTool = which('plutil') ? 'plutil' : which('plistutil') ? 'plistutil' : null;
  it.skipIf(!plistTool)(`parses with ${plistTool ?? 'plutil/plistutil'} (skipped: neither plutil nor plistutil is installed)`, () => {
    const file = path.join(tmp, 'agent.plist');
    writeFileSync(file, renderUnit('launchd', { ...vars, args: ['--config', '/x & y.json'] }));
    if (plistTool === 'plutil') {
      execFileSync('plutil', ['-lint', file]);
      const json = JSON.parse(execFileSync('plutil', ['-convert', 'json', '-o', '-', file], { encoding: 'utf8' })) as Record<string, unknown>;
      expect(json.ProgramArguments).toEqual([vars.node, '--max-semi-space-size=1', vars.bin, 'daemon', '--config', '/x & y.json']);
    } else {
      // XML -> binary -> XML: a parse failure exits non-zero; the round trip must keep the values.
      const bin = path.join(tmp, 'agent.bplist');
      execFileSync('plistutil', ['-i', file, '-o', bin, '-f', 'bin']);
      expect(readFileSync(bin).subarray(0, 6).toString('latin1')).toBe('bplist');
      const back = execFileSync('plistutil', ['-i', bin, '-f', 'xml'], { encoding: 'utf8' });
      const doc = parsePlist(back);
      expect(doc.ProgramArguments).toEqual([vars.node, '--max-semi-space-size=1', vars.bin, 'daemon', '--config', '/x & y.json']);
      expect(doc.KeepAlive).toEqual({ SuccessfulExit: false });
    }
  });
});

// ------------------------------------------------------------------------------------------
describe('planInstall / planUninstall', () => {
  const node = '/usr/bin/node';
  const bin = '/opt/mtr/dist/src/cli/main.js';

  it('Linux: the user unit under ~/.config/systemd/user, daemon-reload, enable --now, then is-active', () => {
    const p = planInstall('linux', '/home/u', 1000, { node, bin, env: {} });
    expect(p.kind).toBe('systemd');
    expect(p.unitPath).toBe('/home/u/.config/systemd/user/mcp-token-rotator.service');
    expect(p.commands).toEqual([
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', 'mcp-token-rotator.service'],
      ['systemctl', '--user', 'is-active', 'mcp-token-rotator.service'],
    ]);
    expect(p.content).toContain(`ExecStart="${node}" "--max-semi-space-size=1" "${bin}" daemon`);
  });

  it('Linux: respects XDG_CONFIG_HOME and passes XDG dirs to the daemon', () => {
    const p = planInstall('linux', '/home/u', 1000, { node, bin, env: { XDG_CONFIG_HOME: '/home/u/cfg', XDG_STATE_HOME: '/var/lib/u-state' } });
    expect(p.unitPath).toBe('/home/u/cfg/systemd/user/mcp-token-rotator.service');
    expect(p.content).toContain('Environment="XDG_CONFIG_HOME=/home/u/cfg"');
    expect(p.content).toContain('Environment="XDG_STATE_HOME=/var/lib/u-state"');
    // Outside HOME, so it must be writable despite ProtectSystem=strict; inside HOME %h covers it.
    expect(p.content).toContain('ReadWritePaths=%h "-/var/lib/u-state"\n');
    // A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
    expect(planInstall('linux', '/home/u', 1000, { node, bin, env: { XDG_CONFIG_HOME: 'rel' } }).unitPath).toBe(
      '/home/u/.config/systemd/user/mcp-token-rotator.service',
    );
  });

  it('Linux: a changed unit already installed is restarted', () => {
    const first = planInstall('linux', '/home/u', 1000, { node, bin });
    expect(planInstall('linux', '/home/u', 1000, { node, bin, previous: first.content }).commands).toHaveLength(3);
    const changed = planInstall('linux', '/home/u', 1000, { node, bin, previous: 'old' });
    expect(changed.commands.at(-2)).toEqual(['systemctl', '--user', 'try-restart', 'mcp-token-rotator.service']);
    expect(changed.commands.at(-1)).toEqual(['systemctl', '--user', 'is-active', 'mcp-token-rotator.service']);
  });

  it('Linux: --config is passed on to the daemon', () => {
    const p = planInstall('linux', '/home/u', 1000, { node, bin, configFile: '/home/u/rotator.json' });
    expect(p.content).toContain('daemon "--config" "/home/u/rotator.json"');
  });

  it('macOS: the agent under ~/Library/LaunchAgents, bootout (may fail), enable, bootstrap, print', () => {
    const p = planInstall('darwin', '/Users/u', 501, { node, bin });
    expect(p.kind).toBe('launchd');
    expect(p.unitPath).toBe('/Users/u/Library/LaunchAgents/com.mcp-token-rotator.daemon.plist');
    expect(p.logDir).toBe('/Users/u/Library/Logs/mcp-token-rotator');
    expect(p.commands).toEqual([
      ['launchctl', 'bootout', 'gui/501/com.mcp-token-rotator.daemon'],
      ['launchctl', 'enable', 'gui/501/com.mcp-token-rotator.daemon'],
      ['launchctl', 'bootstrap', 'gui/501', '/Users/u/Library/LaunchAgents/com.mcp-token-rotator.daemon.plist'],
      ['launchctl', 'print', 'gui/501/com.mcp-token-rotator.daemon'],
    ]);
    expect(p.steps[0]).toMatchObject({ phase: 'before', mayFail: true });
    expect(p.content).toContain('<string>/Users/u/Library/Logs/mcp-token-rotator/mcp-token-rotator.log</string>');
  });

  it('Windows: a clear E_SERVICE error pointing at Task Scheduler', () => {
    for (const plan of [planInstall, planUninstall]) {
      let e: unknown;
      try {
        plan('win32', 'C:\\Users\\u', 0, { node, bin });
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(RotatorError);
      expect((e as RotatorError).code).toBe('E_SERVICE');
      expect((e as RotatorError).describe()).toMatch(/Task Scheduler/);
      expect((e as RotatorError).describe()).toMatch(/daemon/);
    }
  });

  it('Windows: installService and uninstallService refuse before touching anything', async () => {
    const rec = recorder();
    for (const fn of [installService, uninstallService]) {
      await expect(fn({ platform: 'win32', home: tmp, uid: 0, dryRun: false, run: rec.run, env: {} })).rejects.toMatchObject({
        code: 'E_SERVICE',
        hint: expect.stringContaining('Task Scheduler'),
      });
    }
    expect(rec.calls).toEqual([]);
  });

  it('uninstall plans', () => {
    expect(planUninstall('linux', '/home/u', 1000).commands).toEqual([
      ['systemctl', '--user', 'disable', '--now', 'mcp-token-rotator.service'],
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'reset-failed', 'mcp-token-rotator.service'],
    ]);
    expect(planUninstall('darwin', '/Users/u', 501).commands).toEqual([['launchctl', 'bootout', 'gui/501/com.mcp-token-rotator.daemon']]);
  });

  it('shellJoin quotes what a shell would split', () => {
    expect(shellJoin(['systemctl', '--user', 'enable', '--now', 'x.service'])).toBe('systemctl --user enable --now x.service');
    expect(shellJoin(['launchctl', 'bootstrap', 'gui/501', "/Users/o'k & co/a.plist"])).toBe(`launchctl bootstrap gui/501 '/Users/o'\\''k & co/a.plist'`);
  });
});

// ------------------------------------------------------------------------------------------
describe('installService / uninstallService with a recorded runner, in a temp HOME', () => {
  it('--dry-run writes nothing and runs nothing', async () => {
    const home = path.join(tmp, 'home');
    mkdirSync(home);
    const rec = recorder();
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: true, run: rec.run, env: {}, bin: fakeBin(tmp) });
    expect(rec.calls).toEqual([]);
    expect(r.written).toBe(false);
    expect(r.ran).toEqual([]);
    expect(existsSync(r.unitPath)).toBe(false);
    expect(existsSync(path.join(home, '.config'))).toBe(false);
    expect(r.content).toContain('ExecStart=');
    const json = serviceJson(r);
    expect(json).toMatchObject({ kind: 'systemd', unitPath: r.unitPath, written: false, ran: [], dryRun: true });
    expect(json.commands).toEqual(r.commands);
  });

  it('Linux install writes the unit 0644 (mkdir -p) and runs the commands in order', async () => {
    const home = path.join(tmp, 'home');
    mkdirSync(home);
    const rec = recorder();
    const bin = fakeBin(tmp);
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {}, bin, node: process.execPath });
    expect(r.error).toBeNull();
    expect(r.written).toBe(true);
    expect(rec.calls).toEqual([
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', 'mcp-token-rotator.service'],
      ['systemctl', '--user', 'is-active', 'mcp-token-rotator.service'],
    ]);
    const unitPath = path.join(home, '.config/systemd/user/mcp-token-rotator.service');
    expect(r.unitPath).toBe(unitPath);
    expect(statSync(unitPath).mode & 0o777).toBe(0o644);
    expect(readFileSync(unitPath, 'utf8')).toContain(`ExecStart=${systemdExecWord(process.execPath)} "--max-semi-space-size=1" ${systemdExecWord(bin)} daemon`);
    expect(serviceJson(r)).toMatchObject({ written: true, ran: [{ code: 0 }, { code: 0 }, { code: 0 }] });

    // Re-install unchanged: no restart (is-active first: a failure would restart the old one). Changed (another node): try-restart.
    const rec2 = recorder();
    await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec2.run, env: {}, bin, node: process.execPath });
    expect(rec2.calls).toHaveLength(4);
    const rec3 = recorder();
    await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec3.run, env: {}, bin, node: '/usr/local/bin/node' });
    expect(rec3.calls.at(-2)).toEqual(['systemctl', '--user', 'try-restart', 'mcp-token-rotator.service']);
  });

  it('writes through a symlinked unit (dotfiles) and leaves the link', async () => {
    const home = path.join(tmp, 'home');
    const dot = path.join(tmp, 'dotfiles', SYSTEMD_UNIT);
    mkdirSync(path.dirname(dot), { recursive: true });
    writeFileSync(dot, 'old');
    const unitPath = path.join(home, '.config/systemd/user', SYSTEMD_UNIT);
    mkdirSync(path.dirname(unitPath), { recursive: true });
    symlinkSync(dot, unitPath);
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: recorder().run, env: {}, bin: fakeBin(tmp) });
    expect(r.error).toBeNull();
    expect(lstatSync(unitPath).isSymbolicLink()).toBe(true);
    expect(readFileSync(dot, 'utf8')).toContain('ExecStart=');
  });

  it('systemctl missing: exit-2 error, the unit removed again, the daemon to start from the session instead', async () => {
    const home = path.join(tmp, 'home');
    const rec = recorder(() => ({ code: NOT_FOUND, stderr: 'systemctl: command not found' }));
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {}, bin: fakeBin(tmp) });
    expect(r.written).toBe(false);
    expect(r.rolledBack).toBe('removed');
    expect(existsSync(r.unitPath)).toBe(false);
    expect(r.error?.code).toBe('E_SERVICE');
    const text = r.error!.describe();
    expect(text).toContain(`Removed ${r.unitPath} again: nothing is left installed`);
    expect(text).toContain('"systemctl" was not found');
    expect(text).toContain('start "mcp-token-rotator daemon" from your session start-up');
    expect(rec.calls[0]).toEqual(['systemctl', '--user', 'daemon-reload']);
    expect(serviceJson(r)).toMatchObject({ written: false, rolledBack: 'removed', error: { code: 'E_SERVICE' } });
  });

  it('no user bus (a container): names the failing command and the rest to run by hand', async () => {
    const home = path.join(tmp, 'home');
    const rec = recorder((cmd) =>
      cmd.includes('enable') ? { code: 1, stderr: 'Failed to connect to bus: No medium found\n' } : { code: 0, stderr: '' },
    );
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {}, bin: fakeBin(tmp) });
    const text = r.error!.describe();
    expect(text).toContain(`Removed ${r.unitPath} again`);
    expect(existsSync(r.unitPath)).toBe(false);
    expect(text).toContain('"systemctl --user enable --now mcp-token-rotator.service" failed (exit 1): Failed to connect to bus');
    expect(text).toContain('run "mcp-token-rotator install-service" from your desktop/login session instead');
    expect(existsSync(path.join(home, '.config'))).toBe(false); // the directories it made go too
    expect(text).toContain('loginctl enable-linger');
  });

  it('refuses to install a service whose CLI is not built (nothing written)', async () => {
    const home = path.join(tmp, 'home');
    const rec = recorder();
    await expect(
      installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {}, bin: path.join(tmp, 'nope', 'main.js') }),
    ).rejects.toMatchObject({ code: 'E_SERVICE' });
    expect(rec.calls).toEqual([]);
    expect(existsSync(path.join(home, '.config'))).toBe(false);
  });

  it('macOS install: bootout tolerated, plist and log dir written, enable + bootstrap; bootstrap retried on EIO', async () => {
    const home = path.join(tmp, 'Users', 'me & you');
    let bootstraps = 0;
    const rec = recorder((cmd) => {
      if (cmd[1] === 'bootout') return { code: 3, stderr: 'Boot-out failed: 3: No such process' };
      if (cmd[1] === 'bootstrap' && ++bootstraps === 1) return { code: 5, stderr: 'Bootstrap failed: 5: Input/output error' };
      if (cmd[1] === 'print') return { code: 0, stderr: '', stdout: 'gui/501/com.mcp-token-rotator.daemon = {\n\tactive count = 1\n\tstate = running\n' };
      return { code: 0, stderr: '' };
    });
    const r = await installService({ platform: 'darwin', home, uid: 501, dryRun: false, run: rec.run, env: {}, bin: fakeBin(tmp), retryDelayMs: 0 });
    expect(r.error).toBeNull();
    const plist = path.join(home, 'Library/LaunchAgents/com.mcp-token-rotator.daemon.plist');
    expect(existsSync(plist)).toBe(true);
    expect(statSync(path.join(home, 'Library/Logs/mcp-token-rotator')).mode & 0o777).toBe(0o700);
    expect(rec.calls).toEqual([
      ['launchctl', 'bootout', 'gui/501/com.mcp-token-rotator.daemon'],
      ['launchctl', 'enable', 'gui/501/com.mcp-token-rotator.daemon'],
      ['launchctl', 'bootstrap', 'gui/501', plist],
      ['launchctl', 'bootstrap', 'gui/501', plist],
      ['launchctl', 'print', 'gui/501/com.mcp-token-rotator.daemon'],
    ]);
    expect(r.ran[0]).toMatchObject({ code: 3, tolerated: true });
    expect(parsePlist(readFileSync(plist, 'utf8')).WorkingDirectory).toBe(home);
  });

  it('Linux uninstall: disable --now, remove the unit and its wants link, daemon-reload', async () => {
    const home = path.join(tmp, 'home');
    const bin = fakeBin(tmp);
    await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: recorder().run, env: {}, bin });
    const unitPath = path.join(home, '.config/systemd/user', SYSTEMD_UNIT);
    const wants = path.join(home, '.config/systemd/user/default.target.wants', SYSTEMD_UNIT);
    mkdirSync(path.dirname(wants));
    symlinkSync(unitPath, wants);

    const dry = recorder();
    const d = await uninstallService({ platform: 'linux', home, uid: 1000, dryRun: true, run: dry.run, env: {} });
    expect(dry.calls).toEqual([]);
    expect(existsSync(unitPath)).toBe(true);
    expect(d.commands[0]).toEqual(['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT]);

    const rec = recorder();
    const r = await uninstallService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {} });
    expect(r.error).toBeNull();
    expect(r.removed).toBe(true);
    expect(existsSync(unitPath)).toBe(false);
    expect(existsSync(wants) || lstatExists(wants)).toBe(false);
    expect(rec.calls).toEqual([
      ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT],
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'reset-failed', SYSTEMD_UNIT],
    ]);
  });

  it('uninstall when nothing is installed succeeds even without systemctl', async () => {
    const home = path.join(tmp, 'home');
    const rec = recorder(() => ({ code: NOT_FOUND, stderr: 'systemctl: command not found' }));
    const r = await uninstallService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {} });
    expect(r.error).toBeNull();
    expect(r.removed).toBe(false);
    expect(r.notes.join(' ')).toMatch(/not installed/);
  });

  it('macOS uninstall: bootout and remove the plist', async () => {
    const home = path.join(tmp, 'home');
    await installService({ platform: 'darwin', home, uid: 501, dryRun: false, run: recorder(macOk).run, env: {}, bin: fakeBin(tmp) });
    const rec = recorder();
    const r = await uninstallService({ platform: 'darwin', home, uid: 501, dryRun: false, run: rec.run, env: {} });
    expect(r.error).toBeNull();
    expect(rec.calls).toEqual([['launchctl', 'bootout', 'gui/501/com.mcp-token-rotator.daemon']]);
    expect(existsSync(path.join(home, 'Library/LaunchAgents/com.mcp-token-rotator.daemon.plist'))).toBe(false);
  });
});

describe('install-service: installed means active (a failed install leaves nothing behind)', () => {
  const unitRel = '.config/systemd/user/' + SYSTEMD_UNIT;
  /** systemctl as a user manager would answer: enable makes the wants link; is-active says `state`. */
  function systemd(home: string, state: () => string) {
    const wants = path.join(home, '.config/systemd/user/default.target.wants', SYSTEMD_UNIT);
    return recorder((cmd) => {
      if (cmd[2] === 'enable') {
        mkdirSync(path.dirname(wants), { recursive: true });
        if (!lstatExists(wants)) symlinkSync(path.join(home, unitRel), wants);
      }
      if (cmd[2] === 'is-active') {
        const s = state();
        return { code: s === 'active' ? 0 : 3, stderr: '', stdout: `${s}\n` };
      }
      return { code: 0, stderr: '' };
    });
  }

  it('Linux: a service that does not stay active is stopped and its unit and wants link removed; the error says where to look', async () => {
    const home = path.join(tmp, 'home');
    const rec = systemd(home, () => 'failed');
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {}, bin: fakeBin(tmp), retryDelayMs: 0 });
    expect(r.error?.code).toBe('E_SERVICE');
    expect(r.rolledBack).toBe('removed');
    expect(r.written).toBe(false);
    expect(lstatExists(path.join(home, unitRel))).toBe(false);
    expect(lstatExists(path.join(home, '.config/systemd/user/default.target.wants', SYSTEMD_UNIT))).toBe(false);
    expect(existsSync(path.join(home, '.config'))).toBe(false); // and the directories made for them
    const text = r.error!.describe();
    expect(text).toContain('said failed');
    expect(text).toContain(`Removed ${path.join(home, unitRel)} again: nothing is left installed`);
    expect(text).toContain(`journalctl --user -u ${SYSTEMD_UNIT}`);
    expect(rec.calls.filter((c) => c[2] === 'is-active')).toHaveLength(4); // retried while it may still be starting
    expect(rec.calls.slice(-3)).toEqual([
      ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT],
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'reset-failed', SYSTEMD_UNIT],
    ]);
  });

  it('Linux: an upgrade that fails puts the previous, active unit back and restarts it', async () => {
    const home = path.join(tmp, 'home');
    const bin = fakeBin(tmp);
    await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: systemd(home, () => 'active').run, env: {}, bin, node: process.execPath });
    const before = readFileSync(path.join(home, unitRel), 'utf8');
    let n = 0;
    // Active before the upgrade (the first question), failed after the restart on the new unit.
    const rec = systemd(home, () => (n++ === 0 ? 'active' : 'failed'));
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: rec.run, env: {}, bin, node: '/usr/local/bin/node', retryDelayMs: 0 });
    expect(r.rolledBack).toBe('restored');
    expect(readFileSync(path.join(home, unitRel), 'utf8')).toBe(before);
    expect(lstatExists(path.join(home, '.config/systemd/user/default.target.wants', SYSTEMD_UNIT))).toBe(true);
    expect(r.error!.describe()).toContain('Put the previous');
    expect(rec.calls.slice(-2)).toEqual([
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'restart', SYSTEMD_UNIT],
    ]);
  });

  it('Linux: a unit left by an earlier failed install (not active) is not kept either', async () => {
    const home = path.join(tmp, 'home');
    mkdirSync(path.dirname(path.join(home, unitRel)), { recursive: true });
    writeFileSync(path.join(home, unitRel), 'stale');
    const r = await installService({ platform: 'linux', home, uid: 1000, dryRun: false, run: systemd(home, () => 'inactive').run, env: {}, bin: fakeBin(tmp), retryDelayMs: 0 });
    expect(r.rolledBack).toBe('removed');
    expect(lstatExists(path.join(home, unitRel))).toBe(false);
  });

  it('macOS: a loaded agent whose process is not running is booted out and its plist (and new log dir) removed', async () => {
    const home = path.join(tmp, 'Users', 'me');
    const rec = recorder((cmd) => (cmd[1] === 'print' ? { code: 0, stderr: '', stdout: 'gui/501/x = {\n\tstate = spawn scheduled\n' } : { code: 0, stderr: '' }));
    const r = await installService({ platform: 'darwin', home, uid: 501, dryRun: false, run: rec.run, env: {}, bin: fakeBin(tmp), retryDelayMs: 0 });
    expect(r.rolledBack).toBe('removed');
    expect(existsSync(path.join(home, 'Library/LaunchAgents/com.mcp-token-rotator.daemon.plist'))).toBe(false);
    expect(existsSync(path.join(home, 'Library/Logs/mcp-token-rotator'))).toBe(false);
    expect(r.error!.describe()).toContain('shows no running process');
    expect(rec.calls.at(-1)).toEqual(['launchctl', 'bootout', 'gui/501/com.mcp-token-rotator.daemon']);
  });

  it('serviceActive: exit 0 from systemctl is-active; launchctl print must say state = running', async () => {
    expect(await serviceActive({ platform: 'linux', uid: 1000, run: recorder(() => ({ code: 0, stderr: '', stdout: 'active\n' })).run })).toBe(true);
    expect(await serviceActive({ platform: 'linux', uid: 1000, run: recorder(() => ({ code: 3, stderr: '', stdout: 'inactive\n' })).run })).toBe(false);
    expect(await serviceActive({ platform: 'linux', uid: 1000, run: recorder(() => ({ code: NOT_FOUND, stderr: '' })).run })).toBe(false);
    expect(await serviceActive({ platform: 'darwin', uid: 501, run: recorder(macOk).run })).toBe(true);
    expect(await serviceActive({ platform: 'darwin', uid: 501, run: recorder(() => ({ code: 0, stderr: '', stdout: 'state = waiting\n' })).run })).toBe(false);
    expect(await serviceActive({ platform: 'win32', uid: 0, run: recorder().run })).toBe(false);
  });
});

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------
// A minimal XML plist reader: enough to prove the document is well formed (every element
// closed in order, only the five predefined entities) and to read its values back.

type PlistValue = string | number | boolean | PlistValue[] | { [k: string]: PlistValue };

function parsePlist(xml: string): Record<string, PlistValue> {
  const body = xml
    .replace(/^<\?xml[^?]*\?>\s*/, '')
    .replace(/<!DOCTYPE[^>]*>\s*/, '')
    .replace(/<!--[\s\S]*?-->/g, '');
  const tokens = [...body.matchAll(/<(\/?)([A-Za-z]+)\s*([^>]*?)(\/?)>|([^<]+)/g)];
  let i = 0;
  const decode = (s: string) => {
    if (/&(?!amp;|lt;|gt;|quot;|apos;)/.test(s)) throw new Error(`bad entity in ${JSON.stringify(s)}`);
    return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  };
  const next = () => {
    while (i < tokens.length && tokens[i]![5] !== undefined && tokens[i]![5]!.trim() === '') i++;
    return tokens[i++];
  };
  const textUntil = (name: string): string => {
    let t = '';
    for (;;) {
      const tok = tokens[i++];
      if (!tok) throw new Error(`unclosed <${name}>`);
      if (tok[5] !== undefined) t += tok[5];
      else if (tok[1] === '/' && tok[2] === name) return decode(t);
      else throw new Error(`unexpected <${tok[2]}> in <${name}>`);
    }
  };
  const value = (tok: RegExpMatchArray | undefined): PlistValue => {
    if (!tok || tok[5] !== undefined || tok[1] === '/') throw new Error(`expected a value, got ${tok?.[0]}`);
    const name = tok[2]!;
    if (tok[4] === '/') {
      if (name === 'true') return true;
      if (name === 'false') return false;
      throw new Error(`unexpected <${name}/>`);
    }
    if (name === 'string') return textUntil('string');
    if (name === 'integer') return Number(textUntil('integer'));
    if (name === 'array') {
      const arr: PlistValue[] = [];
      for (;;) {
        const t = next();
        if (t?.[1] === '/' && t[2] === 'array') return arr;
        arr.push(value(t));
      }
    }
    if (name === 'dict') {
      const obj: Record<string, PlistValue> = {};
      for (;;) {
        const t = next();
        if (t?.[1] === '/' && t[2] === 'dict') return obj;
        if (t?.[2] !== 'key') throw new Error(`expected <key>, got ${t?.[0]}`);
        const k = textUntil('key');
        if (k in obj) throw new Error(`duplicate key ${k}`);
        obj[k] = value(next());
      }
    }
    throw new Error(`unknown element <${name}>`);
  };
  const open = next();
  if (open?.[2] !== 'plist') throw new Error('no <plist> root');
  const root = value(next());
  const close = next();
  if (close?.[1] !== '/' || close[2] !== 'plist') throw new Error('no </plist>');
  if (next() !== undefined) throw new Error('content after </plist>');
  return root as Record<string, PlistValue>;
}
