// Diagnosis only (bench/diagnose.mjs): preloaded with `node --import`, or imported first in
// the bench process, it wraps the node:fs/promises functions and FileHandle methods a
// rotation uses, and records each call's start and end (performance.now()) while
// `globalThis.__benchTimeline.on` is true. syncBuiltinESMExports makes the ESM named
// imports in dist/ see the wrappers.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const fsp = require('node:fs/promises');
const tl = (globalThis.__benchTimeline ??= { on: false, events: [] });
const rec = (name, s, arg) => {
  if (tl.on) tl.events.push({ name, s, e: performance.now(), arg });
};
for (const name of ['open', 'writeFile', 'readFile', 'readdir', 'mkdir', 'rename', 'unlink', 'realpath', 'stat', 'lstat', 'statfs']) {
  const orig = fsp[name];
  if (typeof orig !== 'function') continue;
  fsp[name] = async function (...a) {
    const s = performance.now();
    try {
      return await orig.apply(this, a);
    } finally {
      rec(name, s, typeof a[0] === 'string' ? a[0] : String(a[0]));
    }
  };
}
syncBuiltinESMExports();
const fh = await fsp.open(process.execPath, 'r');
const proto = Object.getPrototypeOf(fh);
await fh.close();
for (const m of ['sync', 'writeFile', 'chmod', 'chown', 'stat', 'close']) {
  const orig = proto[m];
  proto[m] = async function (...a) {
    const s = performance.now();
    try {
      return await orig.apply(this, a);
    } finally {
      rec(`fh.${m}`, s);
    }
  };
}
