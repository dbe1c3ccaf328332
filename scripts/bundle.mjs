#!/usr/bin/env node
// `npm run build`, after tsc: the CLI as one CommonJS file, so a cold start reads one file
// instead of resolving ~25 ES modules through the ESM loader (measured: `status --json` about
// 12% less CPU, see docs/benchmarks.md; an ESM bundle split per command was no faster).
//
//   dist/src/cli/main.cjs   the bundle: every module of src/, dynamic imports inlined and
//                           still evaluated lazily (a command runs only the code it reaches)
//   dist/src/cli/exec.cjs   `exec` alone (src/cli/entry-exec.ts), resident beside every server
//   dist/src/cli/headers.cjs  `headers` alone (src/cli/entry-headers.ts), run at every connection
//   dist/src/cli/boot.cjs   picks the bundle by the command word, and loads main.cjs with V8's
//                           code cache made here (main.cjs.<id>.v8cache)
//   dist/src/cli/main.js    replaced by a three-line CommonJS file that requires boot.cjs: the
//                           path the bin, the service unit and converted configs name stays
//
// Package dependencies stay external: native addons (better-sqlite3, @napi-rs/keyring) cannot
// be bundled, and the others load lazily where the code asks (createRequire, or import()
// turned into require(): see `supported` below).
// The rest of tsc's dist/src/ stays: tests and the bench import modules from it, and the
// keychain helper process runs dist/src/broker/keychain-child.js. The source map beside the
// bundle is not shipped (package.json "files"); MCP_TOKEN_ROTATOR_DEBUG turns maps on.
import { build } from 'esbuild';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cliDir = path.join(root, 'dist/src/cli');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

// One bundle per entry: main.cjs (every command), and exec.cjs / headers.cjs, the two commands
// clients run (not people) with only what they need; boot.cjs picks by the command word.
const ENTRIES = { main: 'src/cli/main.ts', exec: 'src/cli/entry-exec.ts', headers: 'src/cli/entry-headers.ts' };
const result = await build({
  absWorkingDir: root,
  entryPoints: ENTRIES,
  outdir: cliDir,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})],
  // import() of a dependency becomes a require() (still lazy: run where the code asks). The
  // bundle is loaded from V8's code cache (boot.cjs), and a script loaded that way cannot make a
  // real import() in Node 20 ("A dynamic import callback was not specified"); require() of an
  // ES module (chokidar) works without a flag since Node 20.19, this package's minimum.
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': 'import_meta_url' },
  inject: [path.join(root, 'scripts/import-meta-url.js')],
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
// tsc's main.js carries the shebang; the bundle must not (esbuild keeps it, it is harmless in
// a .cjs file, but the shim is what runs as the bin). The shim is CommonJS, with a package.json
// beside it saying so: an ES module entry starts Node's ESM loader, measured +1.6 MiB on an idle
// exec wrapper (docs/benchmarks.md). Nothing imports tsc's other dist/src/cli/ files (the bundles
// hold them), so they are not read as CommonJS anywhere.
writeFileSync(path.join(cliDir, 'package.json'), '{ "type": "commonjs" }\n');
writeFileSync(
  path.join(cliDir, 'main.js'),
  `#!/usr/bin/env node
// Built by scripts/bundle.mjs: the CLI is the CommonJS bundles beside this file; boot.cjs picks one.
'use strict';
require('./boot.cjs');
`,
);
for (const e of Object.keys(ENTRIES)) {
  if (/\bimport\(/.test(readFileSync(path.join(cliDir, `${e}.cjs`), 'utf8'))) throw new Error(`bundle: ${e}.cjs still has an import(); boot.cjs cannot run it from the code cache`);
}
// Which bundles get a V8 code cache, each made by running its command once in a throw-away HOME
// (a cache is deserialized whole at start, so it costs memory and time for what the run does not
// reach). main.cjs: what a cold `status --json` compiles (start-up, settings, store, status view).
// exec.cjs and headers.cjs: none (docs/benchmarks.md): headers measured no faster with one (a
// 44 KiB bundle compiles lazily in a few ms), and exec sets V8 flags at its start, so V8 would
// reject a cache made before them; a cache is deserialized whole, memory an idle wrapper keeps.
const CACHED = (process.env.MTR_BUNDLE_CACHES ?? 'main').split(',').filter((e) => e in ENTRIES);
for (const f of readdirSync(cliDir)) if (f.endsWith('.v8cache')) rmSync(path.join(cliDir, f));
const caches = {};
for (const e of CACHED) {
  // Keyed by this build's bundle: a cache of another build is never read.
  const id = createHash('sha256').update(readFileSync(path.join(cliDir, `${e}.cjs`))).digest('hex').slice(0, 16);
  caches[`${e}.cjs`] = `${e}.cjs.${id}.v8cache`;
}
writeFileSync(path.join(cliDir, 'boot.cjs'), readFileSync(path.join(root, 'scripts/boot.cjs'), 'utf8').replace('/* @CACHES@ */ {}', JSON.stringify(caches)));
for (const e of CACHED) {
  const home = mkdtempSync(path.join(os.tmpdir(), 'mtr-v8cache-'));
  try {
    const state = path.join(home, 'state');
    const env = { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_STATE_HOME: path.join(home, '.local/state'), MCP_TOKEN_ROTATOR_WRITE_V8CACHE: path.join(cliDir, caches[`${e}.cjs`]) };
    let args = ['status', '--json'];
    if (e !== 'main') {
      // A slot pinned to the file store with a stand-in token; the "server" exits at once.
      const { FileTokenStore, BACKEND_FILE } = await import(pathToFileURL(path.join(root, 'dist/src/broker/store.js')).href);
      const { Secret } = await import(pathToFileURL(path.join(root, 'dist/src/secret.js')).href);
      await new FileTokenStore(state).write('certorix-00000000', new Secret('v8cache-stand-in'));
      writeFileSync(path.join(state, BACKEND_FILE), 'file\n', { mode: 0o600 });
      args = e === 'exec' ? ['exec', 'certorix-00000000', '--state-dir', state, '--', process.execPath, '-e', ''] : ['headers', 'certorix-00000000', '--state-dir', state];
    }
    try {
      execFileSync(process.execPath, [path.join(cliDir, 'boot.cjs'), ...args], { env, stdio: 'ignore' });
    } catch {
      /* status exits non-zero with nothing tracked; the cache is written at exit all the same */
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
chmodSync(path.join(cliDir, 'main.js'), 0o755);
// tsc's map of the main.js it wrote; the shim has none.
rmSync(path.join(cliDir, 'main.js.map'), { force: true });
for (const [f, o] of Object.entries(result.metafile.outputs)) {
  if (!f.endsWith('.cjs')) continue;
  const inputs = Object.keys(o.inputs).length;
  process.stderr.write(`bundle: ${f}, ${(o.bytes / 1024).toFixed(0)} KiB, ${inputs} modules${caches[path.basename(f)] ? ', code cache' : ''}\n`);
}
