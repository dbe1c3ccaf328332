#!/usr/bin/env node
// `npm run build`, after tsc: the CLI as one CommonJS file, so a cold start reads one file
// instead of resolving ~25 ES modules through the ESM loader (measured: `status --json` about
// 12% less CPU, see docs/benchmarks.md; an ESM bundle split per command was no faster).
//
//   dist/src/cli/main.cjs   the bundle: every module of src/, dynamic imports inlined and
//                           still evaluated lazily (a command runs only the code it reaches)
//   dist/src/cli/boot.cjs   loads main.cjs with V8's code cache made here (main.cjs.<id>.v8cache)
//   dist/src/cli/main.js    replaced by a three-line ES module that requires boot.cjs: the
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
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cliDir = path.join(root, 'dist/src/cli');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile: path.join(cliDir, 'main.cjs'),
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
// a .cjs file, but the shim is what runs as the bin).
writeFileSync(
  path.join(cliDir, 'main.js'),
  `#!/usr/bin/env node
// Built by scripts/bundle.mjs: the CLI is the CommonJS bundle beside this file.
import { createRequire } from 'node:module';
createRequire(import.meta.url)('./boot.cjs');
`,
);
if (/\bimport\(/.test(readFileSync(path.join(cliDir, 'main.cjs'), 'utf8'))) throw new Error('bundle: main.cjs still has an import(); boot.cjs cannot run it from the code cache');
// The loader of main.cjs with V8's code cache (scripts/boot.cjs), keyed by this build's bundle.
const buildId = createHash('sha256').update(readFileSync(path.join(cliDir, 'main.cjs'))).digest('hex').slice(0, 16);
for (const f of readdirSync(cliDir)) if (f.endsWith('.v8cache')) rmSync(path.join(cliDir, f));
writeFileSync(path.join(cliDir, 'boot.cjs'), readFileSync(path.join(root, 'scripts/boot.cjs'), 'utf8').replace('@BUILD@', buildId));
// The cache holds what a cold `status --json` compiles (start-up, settings, store, status view),
// made by running it once in a throw-away HOME; `headers` compiles its few functions itself.
{
  const home = mkdtempSync(path.join(os.tmpdir(), 'mtr-v8cache-'));
  try {
    const env = { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_STATE_HOME: path.join(home, '.local/state'), MCP_TOKEN_ROTATOR_WRITE_V8CACHE: path.join(cliDir, `main.cjs.${buildId}.v8cache`) };
    try {
      execFileSync(process.execPath, [path.join(cliDir, 'boot.cjs'), 'status', '--json'], { env, stdio: 'ignore' });
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
const bytes = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith('.cjs'))?.[1].bytes ?? 0;
process.stderr.write(`bundle: dist/src/cli/main.cjs, ${(bytes / 1024).toFixed(0)} KiB, ${Object.keys(result.metafile.inputs).length} modules\n`);
