#!/usr/bin/env node
// npm's `prepare` lifecycle: build after `npm ci` / `npm install` in a clone.
//
// - `npm pack` / `npm publish`: nothing here; `prepack` builds from a clean dist/.
// - `npm i -g <this clone>` on a fresh clone: npm symlinks the clone into the global
//   node_modules and runs `prepare` before the clone has its devDependencies, so the build
//   fails with "tsc: not found" and npm leaves the symlink behind. Say what to run instead,
//   remove that symlink (only when it points at this clone), and fail.
// - otherwise: `npm run build`.
// Built-ins only: it runs before the dependencies may exist.
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, realpathSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const name = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).name;
const cmd = process.env.npm_command;
if (cmd === 'pack' || cmd === 'publish') process.exit(0);

function hasTypescript() {
  try {
    createRequire(path.join(root, 'package.json')).resolve('typescript/package.json');
    return true;
  } catch {
    return false;
  }
}

if (process.env.npm_config_global === 'true' && !hasTypescript()) {
  const prefix = process.env.npm_config_prefix ?? '';
  const link = prefix ? path.join(prefix, process.platform === 'win32' ? '' : 'lib', 'node_modules', name) : '';
  let removed = false;
  try {
    if (link && lstatSync(link).isSymbolicLink() && realpathSync(link) === realpathSync(root)) {
      unlinkSync(link);
      removed = true;
    }
  } catch {
    // No link there (npm may place it elsewhere): nothing to remove.
  }
  process.stderr.write(
    `\nerror: "npm i -g <clone>" cannot install ${name} from a fresh clone: npm links the folder and builds it before its dependencies (TypeScript) are installed.\n` +
      `  fix: in the clone, run:  npm run install-global\n` +
      `       (npm ci, build, pack, then npm i -g of the tarball; the package is not on the npm registry yet)\n` +
      (removed ? `  The link npm made (${link}) was removed; nothing is installed.\n\n` : '\n'),
  );
  process.exit(1);
}

// The npm that runs this lifecycle, when it says where it is; else the one on PATH.
const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? process.env.npm_execpath : null;
const r = npmCli
  ? spawnSync(process.execPath, [npmCli, 'run', 'build'], { cwd: root, stdio: 'inherit' })
  : spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(r.status ?? 1);
