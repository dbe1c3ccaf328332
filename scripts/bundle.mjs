#!/usr/bin/env node
// `npm run build`, after tsc: the CLI as one CommonJS file, so a cold start reads one file
// instead of resolving ~25 ES modules through the ESM loader (measured: `status --json` about
// 12% less CPU, see docs/benchmarks.md; an ESM bundle split per command was no faster).
//
//   dist/src/cli/main.cjs   the bundle: every module of src/, dynamic imports inlined and
//                           still evaluated lazily (a command runs only the code it reaches)
//   dist/src/cli/main.js    replaced by a three-line ES module that requires main.cjs: the
//                           path the bin, the service unit and converted configs name stays
//
// Package dependencies stay external: native addons (better-sqlite3, @napi-rs/keyring) cannot
// be bundled, and the others load lazily where the code asks (createRequire or import(); an
// import() stays a real one, so ESM-only packages such as chokidar load as before).
// The rest of tsc's dist/src/ stays: tests and the bench import modules from it, and the
// keychain helper process runs dist/src/broker/keychain-child.js. The source map beside the
// bundle is not shipped (package.json "files"); MCP_TOKEN_ROTATOR_DEBUG turns maps on.
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  // import() of a dependency stays import(): chokidar is ESM-only.
  supported: { 'dynamic-import': true },
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
createRequire(import.meta.url)('./main.cjs');
`,
);
chmodSync(path.join(cliDir, 'main.js'), 0o755);
// tsc's map of the main.js it wrote; the shim has none.
rmSync(path.join(cliDir, 'main.js.map'), { force: true });
const bytes = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith('.cjs'))?.[1].bytes ?? 0;
process.stderr.write(`bundle: dist/src/cli/main.cjs, ${(bytes / 1024).toFixed(0)} KiB, ${Object.keys(result.metafile.inputs).length} modules\n`);
