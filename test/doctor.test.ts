import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Context } from '../src/context.js';
import {
  ADMIN_ADVICE,
  checkApiProbe,
  checkApiUrl,
  checkConfigMode,
  checkDirectory,
  checkGit,
  checkStateDir,
  checkTokenRole,
  checkTokenState,
  doctorExitCode,
  findGitRoot,
  gitFacts,
  probeApi,
  runDoctor,
  sortFindings,
  type Finding,
  type GitFacts,
  type TokenFacts,
} from '../src/doctor/doctor.js';
import { renderFinding, renderSummary } from '../src/cli/commands/doctor.js';
import { fingerprint } from '../src/fingerprint.js';
import { findLeaks, makeHome, type TempHome } from './helpers/home.js';

const HAVE_GIT = spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0;
const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

const FP = 'a1b2c3d4e5f6';

// =========================================================================================
describe('checkConfigMode', () => {
  it.each([
    [0o100600, 'ok', ''],
    [0o100400, 'ok', ''],
    [0o600, 'ok', ''],
    [0o100644, 'danger', 'read by group and others'],
    [0o100640, 'danger', 'read by group'],
    [0o100604, 'danger', 'read by others'],
    [0o100620, 'danger', 'changed by group'],
    [0o100666, 'danger', 'read by group and others'],
  ] as const)('mode %o -> %s', (mode, severity, text) => {
    const f = checkConfigMode({ file: '/h/.cursor/mcp.json', realPath: '/h/.cursor/mcp.json', mode, fingerprints: [FP] });
    expect(f.severity).toBe(severity);
    expect(f.id).toBe('config-permissions');
    expect(f.fingerprint).toBe(FP);
    expect(f.message).toContain(text);
    expect(f.fix).toBe(severity === 'ok' ? '' : 'chmod 600 /h/.cursor/mcp.json');
  });

  it('through a symlink: names both, and chmods the real file (quoted)', () => {
    const f = checkConfigMode({ file: '/h/.zshrc', realPath: "/h/dot files/it's zshrc", mode: 0o644, fingerprints: [FP, 'ffffffffffff'] });
    expect(f.message).toContain('a symlink to /h/dot files');
    expect(f.message).toContain(`${FP}, ffffffffffff`);
    expect(f.fingerprint).toBeUndefined();
    expect(f.fix).toBe(`chmod 600 '/h/dot files/it'\\''s zshrc'`);
  });
});

describe('checkDirectory', () => {
  it.each([
    [0o40755, false, null],
    [0o40700, true, null],
    [0o40775, true, null],
    [0o40777, false, 'warn'],
    [0o40777, true, 'warn'],
    [0o41777, false, null], // /tmp above a private directory: nobody can swap our entries
    [0o41777, true, 'warn'], // a config directly in /tmp
  ] as const)('mode %o, config directly in it: %s -> %s', (mode, direct, severity) => {
    const f = checkDirectory({ dir: '/x', mode, files: ['/x/a.json'], direct });
    expect(f?.severity ?? null).toBe(severity);
    if (f) expect(f.id).toBe('config-dir-writable');
  });

  it('the fix for a plain world-writable directory is chmod o-w', () => {
    expect(checkDirectory({ dir: '/srv/shared dir', mode: 0o40777, files: ['/srv/shared dir/x/.mcp.json'], direct: false })?.fix).toBe(
      "chmod o-w '/srv/shared dir'",
    );
  });
});

describe('checkGit', () => {
  const file = '/h/code/app/.mcp.json';
  it.each<[GitFacts, Finding['severity'] | null, RegExp]>([
    [{ state: 'none' }, null, /./],
    [{ state: 'tracked', root: '/h/code/app' }, 'danger', /committed to git: the token is in the history; rotate it \(mcp-token-rotator rotate --fingerprint a1b2c3d4e5f6\) and purge it/],
    [{ state: 'untracked', root: '/h/code/app' }, 'warn', /not ignored/],
    [{ state: 'ignored', root: '/h/code/app' }, 'ok', /ignored by git/],
    [{ state: 'unknown', root: '/h/code/app', reason: 'git is not installed' }, 'warn', /git is not installed/],
  ])('%j -> %s', (facts, severity, msg) => {
    const f = checkGit(file, [FP], facts);
    expect(f?.severity ?? null).toBe(severity);
    if (f) {
      expect(f.message).toMatch(msg);
      expect(f.file).toBe(file);
      expect(f.id).toBe('config-in-git');
    }
  });

  it('fixes: rotate + untrack + purge for tracked; .gitignore for untracked', () => {
    const t = checkGit(file, [FP], { state: 'tracked', root: '/h/code/app' })!;
    expect(t.fix).toContain(`mcp-token-rotator rotate --fingerprint ${FP}`);
    expect(t.fix).toContain('git -C /h/code/app rm --cached -- .mcp.json');
    expect(t.fix).toContain('filter-repo');
    const u = checkGit(file, [FP], { state: 'untracked', root: '/h/code/app' })!;
    expect(u.fix).toBe('add it to .gitignore: echo /.mcp.json >> /h/code/app/.gitignore');
  });
});

describe('checkTokenRole / checkTokenState', () => {
  const t = (o: Partial<TokenFacts>): TokenFacts => ({ fingerprint: FP, role: 'editor', state: 'ok', ageDays: 3, files: ['/h/.cursor/mcp.json'], ...o });

  it.each([
    ['admin', 'warn'],
    ['editor', 'ok'],
    ['viewer', 'ok'],
    [null, null],
  ] as const)('role %s -> %s', (role, severity) => {
    const f = checkTokenRole(t({ role }));
    expect(f?.severity ?? null).toBe(severity);
  });

  it('the admin warning carries the seed advice and the set-token command', () => {
    const f = checkTokenRole(t({ role: 'admin' }))!;
    expect(f.id).toBe('admin-token');
    expect(f.fix).toContain(ADMIN_ADVICE);
    expect(f.fix).toContain(`mcp-token-rotator set-token --fingerprint ${FP}`);
    expect(f.message).toContain('/h/.cursor/mcp.json');
  });

  it.each([
    ['ok', 'ok', 'token-age', ''],
    ['due', 'warn', 'token-due', `mcp-token-rotator rotate --fingerprint ${FP}`],
    ['invalid', 'warn', 'token-invalid', `mcp-token-rotator set-token --fingerprint ${FP}`],
    ['rotating', 'warn', 'token-rotating', 'mcp-token-rotator status'],
  ] as const)('state %s -> %s (%s)', (state, severity, id, fix) => {
    const f = checkTokenState(t({ state, ageDays: 100 }), 90);
    expect(f.severity).toBe(severity);
    expect(f.id).toBe(id);
    expect(f.fingerprint).toBe(FP);
    if (fix) expect(f.fix).toContain(fix);
    else expect(f.fix).toBe('');
  });
});

describe('checkStateDir', () => {
  const dir = '/h/.local/state/mcp-token-rotator';
  const e = (rel: string, kind: 'dir' | 'file' | 'socket', mode: number) => ({ path: rel ? `${dir}/${rel}` : dir, kind, mode });

  it.each([
    ['missing', null, ['ok']],
    ['all tight', [e('', 'dir', 0o700), e('rotator.db', 'file', 0o600), e('backups', 'dir', 0o700), e('backups/x.bak', 'file', 0o600)], ['ok']],
    ['dir 0755', [e('', 'dir', 0o755), e('rotator.db', 'file', 0o600)], ['danger']],
    ['db 0644', [e('', 'dir', 0o700), e('rotator.db', 'file', 0o644)], ['danger']],
    ['backups 0755 and a 0640 backup', [e('', 'dir', 0o700), e('backups', 'dir', 0o755), e('backups/x.bak', 'file', 0o640)], ['danger', 'danger']],
    ['socket 0755 (nobody else can connect)', [e('', 'dir', 0o700), e('control.sock', 'socket', 0o755)], ['ok']],
    ['socket 0777', [e('', 'dir', 0o700), e('control.sock', 'socket', 0o777)], ['danger']],
  ] as const)('%s', (_name, entries, severities) => {
    const fs = checkStateDir(dir, entries === null ? null : [...entries]);
    expect(fs.map((f) => f.severity)).toEqual(severities);
    for (const f of fs) if (f.severity === 'danger') expect(f.fix).toMatch(/^chmod (600|700) \//);
  });
});

describe('checkApiUrl / checkApiProbe', () => {
  it.each([
    ['https://api.certorix.com', null],
    ['http://127.0.0.1:8080', null],
    ['http://localhost:3000', null],
    ['http://api.certorix.com', 'danger'],
    ['ftp://api.certorix.com', 'danger'],
  ] as const)('%s -> %s', (url, severity) => {
    const r = checkApiUrl(url, '/h/.config/mcp-token-rotator/config.json');
    expect(r.finding?.severity ?? null).toBe(severity);
    expect(r.parsed === null).toBe(severity !== null);
  });

  it('reachable is ok with the protocol; unreachable is a warning naming the URL', () => {
    const u = new URL('https://api.certorix.com');
    expect(checkApiProbe(u, { ok: true, protocol: 'TLSv1.3' }, 's.json')).toMatchObject({ severity: 'ok', message: expect.stringContaining('TLSv1.3') });
    expect(checkApiProbe(new URL('http://127.0.0.1:9/'), { ok: true, protocol: 'http' }, 's.json').message).toContain('loopback');
    const bad = checkApiProbe(u, { ok: false, error: 'connection refused (ECONNREFUSED)' }, 's.json');
    expect(bad.severity).toBe('warn');
    expect(bad.message).toContain('https://api.certorix.com');
    expect(bad.message).toContain('ECONNREFUSED');
    expect(bad.fix).toContain('s.json');
  });
});

describe('exit code, order, rendering', () => {
  const f = (severity: Finding['severity'], id = 'x'): Finding => ({ id, severity, message: `${severity} message`, fix: severity === 'ok' ? '' : 'do it' });
  it.each([
    [[], 0],
    [[f('ok')], 0],
    [[f('ok'), f('warn')], 0],
    [[f('warn'), f('danger')], 2],
  ] as const)('%j -> %d', (findings, code) => {
    expect(doctorExitCode([...findings])).toBe(code);
  });

  it('worst first, stable within a severity', () => {
    const sorted = sortFindings([f('ok', 'a'), f('warn', 'b'), f('danger', 'c'), f('warn', 'd'), f('danger', 'e')]);
    expect(sorted.map((x) => x.id)).toEqual(['c', 'e', 'b', 'd', 'a']);
  });

  it('one line per finding with a marker and the fix; a summary', () => {
    expect(renderFinding(f('danger'))).toBe('[DANGER] danger message  Fix: do it');
    expect(renderFinding(f('ok'))).toBe('[ok]     ok message');
    expect(renderFinding(f('danger')).includes('\n')).toBe(false);
    expect(renderSummary([f('danger'), f('warn'), f('ok')], true)).toMatch(/^1 danger, 1 warning\(s\), 1 ok \(API reachability not checked: --offline\): fix the DANGER/);
    expect(renderSummary([f('warn')], false)).toMatch(/nothing unsafe found, but see the warnings/);
  });
});

// =========================================================================================
// I/O around the evaluators

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'mtr-doc-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'init.defaultBranch=main', '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd, stdio: 'ignore' });
}

describe.skipIf(!HAVE_GIT)('gitFacts (skipped: git is not installed)', () => {
  it('tracked, untracked, ignored, no repo; git missing -> unknown', async () => {
    const home = path.join(tmp, 'home');
    const repo = path.join(home, 'code', 'app');
    await mkdir(path.join(repo, 'sub'), { recursive: true });
    git(repo, 'init', '-q');
    await writeFile(path.join(repo, '.gitignore'), 'ignored.json\n');
    for (const n of ['tracked.json', 'untracked.json', 'ignored.json', 'sub/[x]*.json']) await writeFile(path.join(repo, n), '{}');
    git(repo, 'add', 'tracked.json', '.gitignore');
    git(repo, 'commit', '-q', '-m', 'x');
    await writeFile(path.join(home, 'plain.json'), '{}');

    expect(await gitFacts(path.join(repo, 'tracked.json'), home)).toEqual({ state: 'tracked', root: repo });
    expect(await gitFacts(path.join(repo, 'untracked.json'), home)).toEqual({ state: 'untracked', root: repo });
    expect(await gitFacts(path.join(repo, 'ignored.json'), home)).toEqual({ state: 'ignored', root: repo });
    // A glob-looking name is a literal path, not a pattern that matches tracked.json.
    expect(await gitFacts(path.join(repo, 'sub/[x]*.json'), home)).toEqual({ state: 'untracked', root: repo });
    expect(await gitFacts(path.join(home, 'plain.json'), home)).toEqual({ state: 'none' });
    expect(await gitFacts(path.join(repo, 'tracked.json'), home, { git: path.join(tmp, 'no-such-git') })).toEqual({
      state: 'unknown',
      root: repo,
      reason: 'git is not installed',
    });
  });

  it('a .git file (worktree/submodule) counts; the walk stops at HOME\'s parent', async () => {
    const outer = path.join(tmp, 'outer');
    const home = path.join(outer, 'home');
    await mkdir(path.join(home, 'wt'), { recursive: true });
    git(outer, 'init', '-q'); // a repository around HOME (another user's, or /home itself)
    await writeFile(path.join(home, 'a.json'), '{}');
    expect(await findGitRoot(path.join(home, 'a.json'), home)).toBeNull();
    await writeFile(path.join(home, 'wt', '.git'), 'gitdir: /nowhere\n');
    expect(await findGitRoot(path.join(home, 'wt', 'b.json'), home)).toBe(path.join(home, 'wt'));
    // HOME itself may be a (dotfiles) repository.
    git(home, 'init', '-q');
    expect(await findGitRoot(path.join(home, 'a.json'), home)).toBe(home);
  });
});

describe('probeApi', () => {
  const servers: Array<Server | tls.Server> = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });
  const listen = async <S extends Server | tls.Server>(s: S): Promise<number> => {
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  };

  it('plain http on loopback: a TCP connect, protocol "http"', async () => {
    const port = await listen(createNetServer((c) => c.end()));
    expect(await probeApi(new URL(`http://127.0.0.1:${port}`))).toEqual({ ok: true, protocol: 'http' });
  });

  it('refused and refused-http-to-remote are failures with a reason', async () => {
    const port = await listen(createNetServer());
    servers.pop()!.close();
    await new Promise((r) => setTimeout(r, 20));
    const r = await probeApi(new URL(`https://127.0.0.1:${port}`), { timeoutMs: 2000 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/ECONNREFUSED/);
    expect((await probeApi(new URL('http://example.invalid'))).error).toMatch(/not loopback/);
  });

  describe.skipIf(!HAVE_OPENSSL)('TLS (skipped: openssl is not installed to make a test certificate)', () => {
    let key: string;
    let cert: string;
    beforeAll(async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'mtr-tls-'));
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
          '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')],
        { stdio: 'ignore' },
      );
      const { readFile } = await import('node:fs/promises');
      key = await readFile(path.join(dir, 'k.pem'), 'utf8');
      cert = await readFile(path.join(dir, 'c.pem'), 'utf8');
      await rm(dir, { recursive: true, force: true });
    });

    it('TLS 1.3 with a trusted certificate: ok, reports TLSv1.3', async () => {
      const port = await listen(tls.createServer({ key, cert }, (s) => s.end()));
      expect(await probeApi(new URL(`https://localhost:${port}`), { ca: cert })).toEqual({ ok: true, protocol: 'TLSv1.3' });
    });

    it('an untrusted certificate is a failure', async () => {
      const port = await listen(tls.createServer({ key, cert }, (s) => s.end()));
      const r = await probeApi(new URL(`https://localhost:${port}`));
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/not trusted/);
    });

    it('a server stuck at TLS 1.2 is refused', async () => {
      const port = await listen(tls.createServer({ key, cert, maxVersion: 'TLSv1.2' }, (s) => s.end()));
      const r = await probeApi(new URL(`https://localhost:${port}`), { ca: cert });
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/TLS 1\.3/);
    });
  });
});

// =========================================================================================
describe('runDoctor in a temp HOME', () => {
  let h: TempHome;
  const TOKEN_A = 'ctx_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  const TOKEN_B = 'ctx_live_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
  const fpA = fingerprint(TOKEN_A);
  const fpB = fingerprint(TOKEN_B);
  const mcp = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: t } } } }, null, 2);

  beforeEach(async () => {
    h = await makeHome();
    await h.settings({ extraConfigs: ['~/code/*/.mcp.json'] });
    await h.write('.cursor/mcp.json', mcp(TOKEN_A), 0o644); // readable by all: danger
    await h.write('.config/Claude/claude_desktop_config.json', mcp(TOKEN_B), 0o600); // private: ok
  });
  afterEach(() => h.cleanup());

  const ctxFor = () => new Context({ pathEnv: { platform: 'linux', home: h.home, env: { HOME: h.home } } });
  async function doctor(opts: Parameters<typeof runDoctor>[1] = { offline: true }): Promise<Finding[]> {
    const ctx = ctxFor();
    try {
      return await runDoctor(ctx, opts);
    } finally {
      await ctx.close();
    }
  }
  const byFile = (fs: Finding[], id: string, rel: string) => fs.find((f) => f.id === id && f.file === h.path(rel));

  it('a 0644 config holding a token is danger (exit 2), a 0600 one ok; no token value anywhere', async () => {
    const fs = await doctor();
    expect(byFile(fs, 'config-permissions', '.cursor/mcp.json')).toMatchObject({
      severity: 'danger',
      fingerprint: fpA,
      fix: `chmod 600 ${h.path('.cursor/mcp.json')}`,
    });
    expect(byFile(fs, 'config-permissions', '.config/Claude/claude_desktop_config.json')).toMatchObject({ severity: 'ok', fingerprint: fpB });
    expect(doctorExitCode(fs)).toBe(2);
    expect(fs[0]!.severity).toBe('danger');
    expect(fs.some((f) => f.id === 'api-reachable')).toBe(false); // --offline
    expect(findLeaks([TOKEN_A, TOKEN_B], [JSON.stringify(fs), fs.map(renderFinding).join('\n')])).toEqual([]);

    await chmod(h.path('.cursor/mcp.json'), 0o600);
    const again = await doctor();
    expect(again.filter((f) => f.severity === 'danger')).toEqual([]);
    expect(doctorExitCode(again)).toBe(0);
  });

  it('checks the real file behind a symlinked config', async () => {
    await h.write('dotfiles/windsurf.json', mcp(TOKEN_A), 0o640);
    await h.link('.codeium/windsurf/mcp_config.json', h.path('dotfiles/windsurf.json'));
    const f = byFile(await doctor(), 'config-permissions', '.codeium/windsurf/mcp_config.json');
    expect(f?.severity).toBe('danger');
    expect(f?.fix).toBe(`chmod 600 ${h.path('dotfiles/windsurf.json')}`);
  });

  it('the state directory: fine when tight, danger when 0755 or a file in it is 0644', async () => {
    await doctor(); // creates the store, 0700 / 0600
    let fs = await doctor();
    expect(fs.filter((f) => f.id === 'state-permissions').map((f) => f.severity)).toEqual(['ok']);
    await chmod(h.stateDir, 0o755);
    await chmod(path.join(h.stateDir, 'rotator.db'), 0o644);
    fs = await doctor();
    const st = fs.filter((f) => f.id === 'state-permissions');
    expect(st.map((f) => [f.severity, f.file, f.fix])).toEqual(
      expect.arrayContaining([
        ['danger', h.stateDir, `chmod 700 ${h.stateDir}`],
        ['danger', path.join(h.stateDir, 'rotator.db'), `chmod 600 ${path.join(h.stateDir, 'rotator.db')}`],
      ]),
    );
  });

  it('an admin token warns with the advice; invalid and due tokens warn with the command', async () => {
    const ctx = ctxFor();
    try {
      await runDoctor(ctx, { offline: true }); // records the tokens
      const now = new Date().toISOString();
      ctx.store.updateTokenInfo(fpB, { role: 'admin', createdAt: new Date(Date.now() - 120 * 86_400_000).toISOString(), checkedAt: now });
      ctx.store.updateTokenInfo(fpA, { role: 'viewer', checkedAt: now, state: 'invalid' });
    } finally {
      await ctx.close();
    }
    await chmod(h.path('.cursor/mcp.json'), 0o600);
    const fs = await doctor();
    expect(fs.find((f) => f.id === 'admin-token')).toMatchObject({ severity: 'warn', fingerprint: fpB, fix: expect.stringContaining(ADMIN_ADVICE) });
    expect(fs.find((f) => f.id === 'token-due')).toMatchObject({ fingerprint: fpB, fix: `mcp-token-rotator rotate --fingerprint ${fpB}` });
    expect(fs.find((f) => f.id === 'token-invalid')).toMatchObject({ fingerprint: fpA });
    expect(doctorExitCode(fs)).toBe(0); // warnings alone
  });

  it('API reachability goes through the probe unless --offline', async () => {
    const seen: string[] = [];
    const fs = await doctor({
      offline: false,
      probe: async (u) => {
        seen.push(u.href);
        return { ok: false, error: 'connection refused (ECONNREFUSED)' };
      },
    });
    expect(seen).toEqual(['https://api.certorix.com/']);
    expect(fs.find((f) => f.id === 'api-reachable')).toMatchObject({ severity: 'warn', message: expect.stringContaining('https://api.certorix.com') });
  });

  it.skipIf(!HAVE_GIT)('configs in git: tracked is danger, untracked warns, ignored is ok (skipped without git)', async () => {
    for (const p of ['tracked', 'untracked', 'ignored']) {
      await h.write(`code/${p}/.mcp.json`, mcp(TOKEN_A), 0o600);
      git(h.path(`code/${p}`), 'init', '-q');
    }
    git(h.path('code/tracked'), 'add', '.mcp.json');
    await h.write('code/ignored/.gitignore', '.mcp.json\n');
    const fs = await doctor();
    const g = (p: string) => byFile(fs, 'config-in-git', `code/${p}/.mcp.json`);
    expect(g('tracked')).toMatchObject({ severity: 'danger', fingerprint: fpA });
    expect(g('tracked')?.message).toContain(`committed to git: the token is in the history; rotate it (mcp-token-rotator rotate --fingerprint ${fpA}) and purge it`);
    expect(g('untracked')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('add it to .gitignore') });
    expect(g('ignored')?.severity).toBe('ok');
    // Configs outside any repository get no git finding.
    expect(byFile(fs, 'config-in-git', '.cursor/mcp.json')).toBeUndefined();
  });
});
