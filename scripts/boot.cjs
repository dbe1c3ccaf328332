// Built by scripts/bundle.mjs into dist/src/cli/boot.cjs (with this build's cache names filled in).
// Picks the bundle by the command word before loading anything else: `exec` (resident beside
// every converted stdio server) and `headers` (Claude Code's headersHelper, run at every
// connection) have their own small bundles, exec.cjs and headers.cjs, holding only what they
// run; every other command is main.cjs, the whole CLI. A bundle with a V8 code cache made at build
// time (<bundle>.<build id>.v8cache) is loaded with it, so a cold start does not parse it again
// (measured: see docs/benchmarks.md). The cache is only a speed-up: V8 rejects one made by another
// Node or V8 version or with other V8 flags (the daemon's --max-semi-space-size), and a missing
// or foreign one (its build id is in its name) is not read; then the bundle is compiled as a
// plain require() would.
/* eslint-disable no-undef, @typescript-eslint/no-require-imports -- a CommonJS file: require, module and __dirname exist */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

// The bundle of each command that has its own, and each bundle's cache file (null: none).
const OWN = { exec: 'exec.cjs', headers: 'headers.cjs' };
const CACHES = /* @CACHES@ */ {};

// The daemon runs without V8's optimizing tiers (interpreter and the Sparkplug baseline only):
// what runs often there (a forwarded call through the local endpoint, a token check) touches
// much code once per call and gains little from them, while their code and zones stay resident
// once used. Set here, before the bundle's top level runs (that alone got TurboFan going: set
// from the daemon command instead, the idle daemon kept ~4 MiB more). Same-run figures: idle
// daemon with broker mode on 55.8 -> 51.5 MiB, without (62 configs) 59.2 -> 53.5 MiB, endpoint
// overhead and CPU per call within the spread (docs/benchmarks.md, fifth pass). At run time,
// not in the service's node options: an unknown V8 flag on the command line stops node, here
// a Node whose V8 lacks it ignores it.
if (process.argv[2] === 'daemon') require('node:v8').setFlagsFromString('--max-opt=1');

const name = Object.hasOwn(OWN, process.argv[2] ?? '') ? OWN[process.argv[2]] : 'main.cjs';
const file = path.join(__dirname, name);
const cacheFile = CACHES[name] ? path.join(__dirname, CACHES[name]) : null;

function boot() {
  // Source maps (MCP_TOKEN_ROTATOR_DEBUG) follow the plain require path.
  if (process.env.MCP_TOKEN_ROTATOR_DEBUG || !cacheFile) return require(file);
  const vm = require('node:vm');
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // no cache: compile as usual
  }
  const writeCache = process.env.MCP_TOKEN_ROTATOR_WRITE_V8CACHE === cacheFile;
  if (!cachedData && !writeCache) return require(file);
  // The wrapper CommonJS gives a module, with the bundle's shebang line left out.
  const source = Module.wrap(fs.readFileSync(file, 'utf8').replace(/^#!.*/, ''));
  const script = new vm.Script(source, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  if (writeCache) process.once('exit', () => fs.writeFileSync(cacheFile, script.createCachedData()));
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(__dirname);
  m.loaded = true;
  require.cache[file] = m;
  script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, __dirname);
}
boot();
