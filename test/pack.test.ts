/**
 * The package as users get it, through the README's install command `npm run install-global`
 * (scripts/install-global.mjs: `npm pack`, whose prepack builds from a clean dist/, then
 * `npm i -g --prefix <tmp> <tarball>` with no repository around it), and the installed binary
 * run from the temp prefix: --version, status --json, install-service (with a stand-in
 * systemctl on PATH), and an upgrade to a newer tarball that the installed unit follows.
 *
 * The project is copied to a temp directory first (node_modules linked), so packing never
 * touches this checkout's dist/ while other test files run the built CLI.
 *
 * Offline: npm resolves from its cache (`--offline`; `--prefer-offline` when the cache lacks
 * a package document, which `npm ci` does not store). better-sqlite3 compiles from source
 * on install when no prebuilt binary can be downloaded, which takes minutes on a busy 2-core
 * machine; by default the install skips install scripts and reuses this checkout's compiled
 * addon (same Node, same better-sqlite3 version: checked). MCP_PACK_TEST_COMPILE=1 (set by
 * .ci/run) runs the install scripts for real instead.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../src/fingerprint.js';
import { DAEMON_NODE_OPTIONS } from '../src/service/render.js';
import { ROOT } from './helpers/home.js';

const run = promisify(execFile);
const COMPILE = process.env.MCP_PACK_TEST_COMPILE === '1';
const SETUP_MS = COMPILE ? 1_800_000 : 240_000;
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

let tmp: string;
let copy: string;
let prefix: string;
let tarball: string;
let packedFiles: Array<{ path: string; mode: number }>;
let installed: string;
let binLink: string;

const npmEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  npm_config_loglevel: 'error',
});

async function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', args, { cwd, env: npmEnv(), maxBuffer: 64 * 1024 * 1024, timeout: SETUP_MS });
}

/** The project without node_modules, dist and .git, with node_modules linked in (tsc for prepack). */
function copyProject(dest: string): void {
  const skip = new Set(['node_modules', 'dist', '.git', '.bench-tmp', 'coverage']);
  cpSync(ROOT, dest, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(ROOT, src);
      return rel === '' || !skip.has(rel.split(path.sep)[0] ?? '');
    },
  });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dest, 'node_modules'), 'dir');
}

async function pack(dir: string, ignoreScripts: boolean): Promise<{ file: string; files: Array<{ path: string; mode: number }> }> {
  const { stdout } = await npm(['pack', '--json', '--pack-destination', tmp, ...(ignoreScripts ? ['--ignore-scripts'] : [])], dir);
  // npm prints the lifecycle scripts' output before the JSON document.
  const doc = JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1 || stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string; mode: number }> }>;
  const first = doc[0];
  if (!first) throw new Error(`npm pack printed no result: ${stdout}`);
  return { file: path.join(tmp, first.filename), files: first.files };
}

/** Copies this checkout's compiled better-sqlite3 addon into the install (see the header). */
function reuseAddon(): void {
  const ours = path.join(ROOT, 'node_modules', 'better-sqlite3');
  const theirs = path.join(installed, 'node_modules', 'better-sqlite3');
  const v = (d: string) => (JSON.parse(readFileSync(path.join(d, 'package.json'), 'utf8')) as { version: string }).version;
  expect(v(theirs), 'the installed better-sqlite3 is the one this checkout compiled').toBe(v(ours));
  mkdirSync(path.join(theirs, 'build', 'Release'), { recursive: true });
  copyFileSync(path.join(ours, 'build', 'Release', 'better_sqlite3.node'), path.join(theirs, 'build', 'Release', 'better_sqlite3.node'));
}

/**
 * The README's install command, `npm run install-global`, as a user runs it in a clone (here
 * the copy): it packs, installs the tarball globally (into the temp prefix) and checks
 * `--version`. `--skip-ci` only because the copy's node_modules is this checkout's (linked):
 * `npm ci` there would wipe it under the other test files. `--keep-tarball` so the tests below
 * can look at what was packed.
 */
async function installGlobalFromClone(dir: string): Promise<{ file: string; files: Array<{ path: string; mode: number }> }> {
  const args = ['run', '-s', 'install-global', '--', '--skip-ci', '--json', '--keep-tarball', tmp, '--prefix', prefix, '--prefer-offline', ...(COMPILE ? [] : ['--ignore-scripts'])];
  const { stdout } = await npm(args, dir);
  const doc = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { version: string; tarball: string; files: Array<{ path: string; mode: number }>; bin: string };
  expect(doc.bin).toBe(binLink);
  expect(doc.version).toBe(PKG.version);
  if (!COMPILE) reuseAddon();
  return { file: doc.tarball, files: doc.files };
}

async function installGlobal(tgz: string): Promise<void> {
  const base = ['i', '-g', '--prefix', prefix, '--no-audit', '--no-fund', ...(COMPILE ? [] : ['--ignore-scripts'])];
  try {
    await npm([...base, '--offline', tgz], tmp);
  } catch (e) {
    if (!/ENOTCACHED/.test(String((e as { stderr?: string }).stderr ?? e))) throw e;
    // The cache has every tarball (npm ci) but maybe not every package document.
    await npm([...base, '--prefer-offline', tgz], tmp);
  }
  if (!COMPILE) reuseAddon();
}

function makeHome(name: string): { home: string; env: NodeJS.ProcessEnv } {
  const home = path.join(tmp, name);
  mkdirSync(home, { recursive: true });
  // A stand-in systemctl (there is no user session here): it records its arguments.
  const fakeBin = path.join(tmp, 'fake-bin');
  mkdirSync(fakeBin, { recursive: true });
  const systemctl = path.join(fakeBin, 'systemctl');
  if (!existsSync(systemctl)) {
    writeFileSync(systemctl, `#!/bin/sh\necho "$*" >> "$HOME/systemctl.log"\n`);
    chmodSync(systemctl, 0o755);
  }
  // Nothing from this checkout: only the prefix's bin, the fake systemctl and the system.
  return { home, env: { HOME: home, LANG: 'C.UTF-8', PATH: `${path.join(prefix, 'bin')}:${fakeBin}:/usr/bin:/bin` } };
}

async function cli(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(binLink, args, { env, cwd, timeout: 60_000 });
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
}

/** The executable and arguments of ExecStart= (our renderer double-quotes every word). */
function execStart(unit: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error(`no ExecStart in:\n${unit}`);
  return [...line.slice('ExecStart='.length).matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

beforeAll(async () => {
  tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'mtr-pack-')));
  copy = path.join(tmp, 'project');
  prefix = path.join(tmp, 'prefix');
  installed = path.join(prefix, 'lib', 'node_modules', PKG.name);
  binLink = path.join(prefix, 'bin', PKG.name);
  copyProject(copy);
  const p = await installGlobalFromClone(copy);
  tarball = p.file;
  packedFiles = p.files;
}, SETUP_MS);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the built CLI, the unit templates and the docs, and nothing else', () => {
    expect(path.basename(tarball)).toBe(`${PKG.name}-${PKG.version}.tgz`);
    expect(existsSync(tarball)).toBe(true);
    const names = packedFiles.map((f) => f.path).sort();
    const allowed = new Set(['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'systemd/mcp-token-rotator.service', 'launchd/com.mcp-token-rotator.daemon.plist']);
    // dist/src/cli/main.cjs: the CLI bundle that dist/src/cli/main.js loads through boot.cjs,
    // with V8's code cache made at build time; exec.cjs and headers.cjs, those commands' own
    // bundles; the package.json that makes the main.js shim CommonJS (scripts/bundle.mjs).
    const BUNDLE = ['dist/src/cli/main.cjs', 'dist/src/cli/exec.cjs', 'dist/src/cli/headers.cjs', 'dist/src/cli/boot.cjs', 'dist/src/cli/package.json'];
    const bundle = (n: string) => BUNDLE.includes(n) || /^dist\/src\/cli\/main\.cjs\.[0-9a-f]{16}\.v8cache$/.test(n);
    const stray = names.filter((n) => !allowed.has(n) && !/^dist\/src\/.+\.js$/.test(n) && !bundle(n) && !/^docs\/[a-z-]+\.md$/.test(n));
    // The reference the README and the error messages point at ships beside the README.
    for (const doc of ['docs/commands.md', 'docs/settings.md', 'docs/troubleshooting.md', 'docs/security.md', 'docs/clients.md']) expect(names, doc).toContain(doc);
    expect(stray, 'files outside the whitelist').toEqual([]);
    for (const must of allowed) expect(names, must).toContain(must);
    expect(names).toContain('dist/src/cli/main.js');
    for (const b of BUNDLE) expect(names).toContain(b);
    expect(names.filter((n) => n.endsWith('.v8cache'))).toHaveLength(1);
    expect(names.filter((n) => /^(src|test|bench)\/|^dist\/(test|bench)\/|\.map$|\.ts$/.test(n))).toEqual([]);
    // The bin has a shebang and the run bit in the tarball itself.
    expect(packedFiles.find((f) => f.path === 'dist/src/cli/main.js')?.mode.toString(8)).toBe('755');
    expect(readFileSync(path.join(installed, 'dist/src/cli/main.js'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('packs from a clean build: a stale file in dist/ does not ship', () => {
    // prepack removed dist/ before building, so what the tarball holds is what src/ builds.
    for (const f of packedFiles.filter((x) => x.path.startsWith('dist/src/'))) {
      // boot.cjs and the code cache are made by scripts/bundle.mjs from scripts/boot.cjs and the bundle.
      // The shim's package.json too; exec.cjs and headers.cjs are built from src/cli/entry-<name>.ts.
      if (f.path === 'dist/src/cli/boot.cjs' || f.path === 'dist/src/cli/package.json') continue;
      if (f.path.endsWith('.v8cache')) continue;
      const ts = path.join(copy, f.path.replace(/^dist\//, '').replace(/^src\/cli\/(exec|headers)\.cjs$/, 'src/cli/entry-$1.cjs').replace(/\.c?js$/, '.ts'));
      expect(existsSync(ts), `${f.path} has a source`).toBe(true);
    }
  });
});

describe('npm i -g <fresh clone>', () => {
  it('stops with the command to use instead and leaves no link behind', async () => {
    // A fresh clone as far as npm is concerned: the manifest and its scripts, no node_modules.
    const clone = path.join(tmp, 'fresh-clone');
    mkdirSync(clone, { recursive: true });
    copyFileSync(path.join(ROOT, 'package.json'), path.join(clone, 'package.json'));
    cpSync(path.join(ROOT, 'scripts'), path.join(clone, 'scripts'), { recursive: true });
    const otherPrefix = path.join(tmp, 'prefix-fresh');
    const r = await npm(['i', '-g', '--prefix', otherPrefix, '--offline', clone], tmp).then(
      (x) => ({ code: 0, ...x }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('npm run install-global');
    expect(r.stderr).not.toMatch(/tsc: not found/);
    expect(existsSync(path.join(otherPrefix, 'lib', 'node_modules', PKG.name)), 'the global link npm made').toBe(false);
    expect(existsSync(path.join(otherPrefix, 'bin', PKG.name))).toBe(false);
  });
});

describe('the globally installed package', () => {
  it('--version prints the package version', async () => {
    const { env, home } = makeHome('home-version');
    const r = await cli(['--version'], env, home);
    expect(r).toMatchObject({ code: 0, stdout: `${PKG.version}\n` });
    const j = await cli(['--version', '--json'], env, home);
    expect(JSON.parse(j.stdout)).toMatchObject({ version: PKG.version });
  });

  it('status --json works in a fresh HOME (settings, SQLite, scan) from the tarball alone', async () => {
    const { env, home } = makeHome('home-status');
    const token = 'ctx_live_' + 'p4ck4g3d'.repeat(5);
    mkdirSync(path.join(home, '.cursor'), { recursive: true });
    writeFileSync(path.join(home, '.cursor/mcp.json'), JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['certorix-mcp'], env: { CERTORIX_API_TOKEN: token } } } }));
    const scan = await cli(['scan', '--offline', '--json'], env, home);
    expect(scan.code, scan.stderr).toBe(0);
    const r = await cli(['status', '--json'], env, home);
    const doc = JSON.parse(r.stdout) as { tokens: Array<{ fingerprint: string; locations: Array<{ path: string }> }> };
    expect(doc.tokens.map((t) => t.fingerprint)).toEqual([fingerprint(token)]);
    expect(doc.tokens[0]?.locations.map((l) => l.path)).toEqual([path.join(home, '.cursor/mcp.json')]);
    expect(existsSync(path.join(home, '.local/state/mcp-token-rotator/rotator.db'))).toBe(true);
  });

  it.skipIf(process.platform !== 'linux')('install-service --dry-run shows the unit running the installed package through its bin link', async () => {
    const { env, home } = makeHome('home-dry');
    const r = await cli(['install-service', '--dry-run'], env, home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`"${binLink}" daemon`);
    expect(r.stdout).toContain(`for mcp-token-rotator ${PKG.version}`);
    expect(r.stdout).not.toContain(ROOT);
    const j = await cli(['install-service', '--dry-run', '--json'], env, home);
    const doc = JSON.parse(j.stdout) as { content: string; version: string };
    expect(doc.version).toBe(PKG.version);
    expect(execStart(doc.content)).toEqual([process.execPath, ...DAEMON_NODE_OPTIONS, binLink, 'daemon']);
    expect(existsSync(path.join(home, '.config/systemd/user/mcp-token-rotator.service'))).toBe(false);
  });

  it.skipIf(process.platform !== 'linux')(
    'the installed unit follows an upgrade (npm i -g of a newer tarball), and re-running install-service restarts it',
    async () => {
      const { env, home } = makeHome('home-upgrade');
      const first = await cli(['install-service'], env, home);
      expect(first.code, first.stderr).toBe(0);
      const unitPath = path.join(home, '.config/systemd/user/mcp-token-rotator.service');
      const unit1 = readFileSync(unitPath, 'utf8');
      const [node, ...rest] = execStart(unit1);
      expect(rest.slice(0, DAEMON_NODE_OPTIONS.length)).toEqual([...DAEMON_NODE_OPTIONS]);
      const [bin, ...args] = rest.slice(DAEMON_NODE_OPTIONS.length);
      expect(bin).toBe(binLink);

      // A newer version of the same package (the build from the first pack is reused).
      const next = `${PKG.version}-next.1`;
      const pj = path.join(copy, 'package.json');
      writeFileSync(pj, readFileSync(pj, 'utf8').replace(`"version": "${PKG.version}"`, `"version": "${next}"`));
      const p2 = await pack(copy, true);
      await installGlobal(p2.file);

      // What systemd would start now: the new version, with no change to the unit.
      const started = await run(node ?? '', [bin ?? '', '--version'], { env, cwd: home });
      expect(started.stdout).toBe(`${next}\n`);
      expect(args).toEqual(['daemon']);

      // Re-running install-service renders the new version, so the service is restarted on it.
      const again = await cli(['install-service'], env, home);
      expect(again.code, again.stderr).toBe(0);
      const unit2 = readFileSync(unitPath, 'utf8');
      expect(unit2).toContain(`for mcp-token-rotator ${next}`);
      expect(execStart(unit2)).toEqual(execStart(unit1));
      const log = readFileSync(path.join(home, 'systemctl.log'), 'utf8').trim().split('\n');
      // Each install ends by asking whether the service is active; the second asks first too
      // (a failed upgrade would put the running unit back).
      expect(log).toEqual([
        '--user daemon-reload',
        '--user enable --now mcp-token-rotator.service',
        '--user is-active mcp-token-rotator.service',
        '--user is-active mcp-token-rotator.service',
        '--user daemon-reload',
        '--user enable --now mcp-token-rotator.service',
        '--user try-restart mcp-token-rotator.service',
        '--user is-active mcp-token-rotator.service',
      ]);
    },
    SETUP_MS,
  );
});
