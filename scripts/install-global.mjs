#!/usr/bin/env node
// `npm run install-global`: install the CLI globally from this clone, in one command that works
// on a fresh machine (the package is not on the npm registry yet).
//
// Why not `npm i -g .`: npm links the folder (the global install then breaks when the clone
// moves) and runs `prepare` before the clone has its devDependencies, so tsc is missing. So:
//   1. npm ci                      (the clone's dependencies, typescript included)
//   2. npm pack into a temp dir    (prepack builds dist/ from a clean tree)
//   3. npm i -g <that tarball>     (a real copy, like an install from the registry)
//   4. the temp dir is removed, whatever happened; `mcp-token-rotator --version` is checked
//
//   npm run install-global                          the whole thing
//   npm run install-global -- --prefix ~/.local     any argument that is not ours goes to `npm i -g`
//   --skip-ci          do not run `npm ci` (node_modules is already installed)
//   --keep-tarball DIR pack into DIR and leave the tarball there (tests)
//   --json             print one JSON document on stdout at the end:
//                      { version, tarball, files: [{ path, mode }], bin }
// Built-ins only: this runs before `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const say = (line) => process.stderr.write(`${line}\n`);

function fail(message, fix) {
  say(`error: ${message}`);
  if (fix) say(`  fix: ${fix}`);
  process.exit(2);
}

const ours = { skipCi: false, json: false, keep: null };
const forNpm = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--skip-ci') ours.skipCi = true;
  else if (a === '--json') ours.json = true;
  else if (a === '--keep-tarball') {
    ours.keep = argv[++i];
    if (!ours.keep) fail('--keep-tarball needs a directory.');
  } else if (a === '--help' || a === '-h') {
    say('Usage: npm run install-global [-- [--skip-ci] [--keep-tarball DIR] [--json] [npm i -g options]]');
    process.exit(0);
  } else if (a !== '--') forNpm.push(a); // `node scripts/install-global.mjs -- ...` as npm run would pass it
}

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) fail(`Node.js ${process.versions.node} is too old; ${pkg.name} needs >= 20.19.`, 'Install a newer Node.js (https://nodejs.org), then run this again.');

const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? process.env.npm_execpath : null;
/** npm with our stdout kept clean for --json: its progress goes to stderr. */
function npm(args, { capture = false } = {}) {
  const cmd = npmCli ? process.execPath : process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const full = npmCli ? [npmCli, ...args] : args;
  const r = spawnSync(cmd, full, {
    cwd: root,
    stdio: ['ignore', capture ? 'pipe' : process.stderr, 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    shell: !npmCli && process.platform === 'win32',
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  if (r.error) fail(`could not run npm: ${r.error.message}`, 'Check that npm is on your PATH (it comes with Node.js).');
  if (r.status !== 0) fail(`"npm ${args.join(' ')}" failed (exit ${r.status}); see its messages above.`, 'Fix what it reports, then run "npm run install-global" again. Nothing was installed globally unless the last step ran.');
  return r.stdout ?? '';
}

if (!ours.skipCi) {
  say(`[1/3] npm ci: ${pkg.name}'s dependencies (better-sqlite3 may compile, about a minute)`);
  // npm's allow-scripts setting applies to both installs: better-sqlite3 builds in each.
  npm(['ci', '--no-audit', '--no-fund', ...forNpm.filter((x) => x.startsWith('--allow-scripts'))]);
} else say('[1/3] npm ci skipped (--skip-ci)');

const dest = ours.keep ? path.resolve(ours.keep) : mkdtempSync(path.join(os.tmpdir(), 'mcp-token-rotator-install-'));
let result;
try {
  say(`[2/3] npm pack: build from a clean dist/ and pack into ${dest}`);
  const out = npm(['pack', '--json', '--pack-destination', dest], { capture: true });
  // Lifecycle scripts print before the JSON document.
  const start = out.indexOf('\n[') >= 0 ? out.indexOf('\n[') + 1 : out.indexOf('[');
  const packed = JSON.parse(out.slice(start))[0];
  if (!packed) fail(`npm pack printed no result: ${out}`);
  const tarball = path.join(dest, packed.filename);
  if (!existsSync(tarball)) fail(`npm pack said it wrote ${tarball}, but it is not there.`);

  say(`[3/3] npm i -g ${[...forNpm, tarball].join(' ')}`);
  npm(['i', '-g', '--no-audit', '--no-fund', ...forNpm, tarball]);

  const prefix = npm(['prefix', '-g', ...forNpm.filter((a, i, all) => a.startsWith('--prefix') || all[i - 1] === '--prefix')], { capture: true }).trim();
  const bin = process.platform === 'win32' ? path.join(prefix, `${pkg.name}.cmd`) : path.join(prefix, 'bin', pkg.name);
  result = { version: pkg.version, tarball: ours.keep ? tarball : null, files: packed.files.map((f) => ({ path: f.path, mode: f.mode })), bin };
} finally {
  if (!ours.keep) rmSync(dest, { recursive: true, force: true });
}

const check = spawnSync(result.bin, ['--version'], { encoding: 'utf8', shell: process.platform === 'win32' });
if (check.status !== 0 || check.stdout.trim() !== pkg.version) {
  fail(`the installed ${result.bin} did not answer --version with ${pkg.version} (${(check.error?.message ?? check.stderr ?? '').trim() || `exit ${check.status}`}).`, 'Run it by hand to see why; a missing better-sqlite3 binary means install scripts were refused: add --allow-scripts=better-sqlite3.');
}
say(`Installed ${pkg.name} ${pkg.version}: ${result.bin}`);
const onPath = (process.env.PATH ?? '').split(path.delimiter).includes(path.dirname(result.bin));
if (!onPath) say(`note: ${path.dirname(result.bin)} is not on your PATH; add it, or run ${result.bin} by its full path.`);
say(`Next: ${pkg.name} install-service (the background service), then ${pkg.name} status`);
if (ours.json) process.stdout.write(`${JSON.stringify(result)}\n`);
