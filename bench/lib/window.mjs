// Measure 1: the breakage window of a rotation, in-process, and its floor.
//
// Window = from the moment the fake API writes the 201 of POST /v1/token/regenerate (the old
// token is dead from then on) to the moment the last rewritten config is durable (the last
// fsync of a config file or of its directory has returned). Both ends are taken with
// performance.now() in this process: the fake API runs in-process on 127.0.0.1.
//  - start: the fake pushes a record per request into `api.requests` and sets its `status`
//    right before writeHead/end; a setter on that record timestamps the 201.
//  - end: FileHandle.prototype.sync is wrapped to timestamp each completed fsync. The only
//    FileHandle fsyncs a rotation does are the configs' temp files and their directories
//    (SQLite fsyncs natively, backups are not fsynced), so the last one is "last config durable".
// Floor = a bare loop doing the same file work: for each config, open a temp file in its
// directory, write the same number of bytes, fsync, close, rename over it; then one fsync per
// directory. Measured sequentially (a plain loop) and with the product's concurrency
// (Promise.all); the faster of the two medians is the floor.
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { makeHome } from './home.mjs';
import { now, summarize } from './stats.mjs';

const dist = new URL('../../dist/', import.meta.url);
const { startFakeCertorix } = await import(new URL('test/fake/certorix.js', dist));
const { Context } = await import(new URL('src/context.js', dist));
const { rotateTokens } = await import(new URL('src/rotation/run.js', dist));
const { brokerPort } = await import(new URL('src/broker/rotation-port.js', dist));
const { findTokens, recordScan } = await import(new URL('src/scan.js', dist));
const { createLogger } = await import(new URL('src/log.js', dist));
const { fingerprint } = await import(new URL('src/fingerprint.js', dist));

const REGEN = '/v1/token/regenerate';

/** Timestamps of completed FileHandle fsyncs, while `recording`. */
const syncs = { recording: false, times: [] };
let patched = false;
async function patchFileHandleSync(probeFile) {
  if (patched) return;
  const fh = await open(probeFile, 'r');
  const proto = Object.getPrototypeOf(fh);
  await fh.close();
  const orig = proto.sync;
  proto.sync = async function sync(...args) {
    const r = await orig.apply(this, args);
    if (syncs.recording) syncs.times.push(now());
    return r;
  };
  patched = true;
}

/** Makes every request record the fake API logs timestamp its answer. */
export function instrumentFake(api) {
  const log = [];
  log.push = function push(...recs) {
    for (const rec of recs) {
      let status = rec.status;
      rec.arrivedAt = now();
      rec.arrivedAtEpoch = performance.timeOrigin + rec.arrivedAt;
      Object.defineProperty(rec, 'status', {
        enumerable: true,
        get: () => status,
        set: (v) => {
          status = v;
          rec.answeredAt = now();
          rec.answeredAtEpoch = performance.timeOrigin + rec.answeredAt;
        },
      });
    }
    return Array.prototype.push.apply(this, recs);
  };
  api.requests = log;
}

/** fsync everything so that one round's dirty pages do not land in the next round's fsyncs. */
export function syncAll() {
  try {
    execFileSync('sync');
  } catch {
    /* no sync(1): nothing to do */
  }
}

function dirsOf(files) {
  return [...new Set(files.map((f) => path.dirname(f)))];
}

async function fsyncDir(d) {
  const fh = await open(d, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeOne(file, data) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.floor-${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  await fh.writeFile(data);
  await fh.sync();
  await fh.close();
  await rename(tmp, file);
}

/** The floor: same files, same sizes (their current bytes), same pattern, same directories. */
async function floorRound(files, mode) {
  const datas = await Promise.all(files.map((f) => readFile(f)));
  syncAll();
  const t0 = now();
  if (mode === 'sequential') {
    for (let i = 0; i < files.length; i++) await writeOne(files[i], datas[i]);
    for (const d of dirsOf(files)) await fsyncDir(d);
  } else {
    await Promise.all(files.map((f, i) => writeOne(f, datas[i])));
    await Promise.all(dirsOf(files).map(fsyncDir));
  }
  return now() - t0;
}

async function rotateRound(ctx, api, home) {
  const scan = await findTokens(ctx);
  const fps = [...scan.tokens.keys()];
  if (fps.length !== 1) throw new Error(`expected one token in the bench HOME, found ${fps.length}`);
  const [fp] = fps;
  const lines = [];
  ctx.log.__sink.lines = lines;
  const before = api.requests.length;
  syncAll();
  syncs.times = [];
  syncs.recording = true;
  const t0 = now();
  const [res] = await rotateTokens(ctx, [fp], { source: 'manual', broker: brokerPort });
  const t1 = now();
  syncs.recording = false;
  if (res.status !== 'rotated') throw new Error(`rotation did not finish: ${res.status} ${res.error?.message ?? ''}`);
  const reqs = api.requests.slice(before);
  const regen = reqs.find((r) => r.path === REGEN && r.status === 201);
  const verify = reqs.find((r) => r.path === '/v1/token' && r.bearerFingerprint === res.newFingerprint);
  const sent = regen.answeredAt;
  const lastDurable = Math.max(...syncs.times.filter((t) => t >= sent));
  const logAt = (msg) => lines.find((l) => l.msg === msg)?.at;
  return {
    files: res.files.length,
    window: lastDurable - sent,
    full: t1 - t0,
    preflight: regen.arrivedAt - t0,
    toJournaled: (logAt('token regenerated') ?? NaN) - sent,
    toVerifyCall: (verify?.arrivedAt ?? NaN) - sent,
    afterDurable: t1 - lastDurable,
    syncCount: syncs.times.length,
    home,
  };
}

export function makeLogger() {
  const sink = {
    lines: [],
    write(line) {
      const at = now();
      try {
        this.lines.push({ at, ...JSON.parse(line) });
      } catch {
        this.lines.push({ at, msg: line });
      }
    },
  };
  const logger = createLogger({ sink, level: 'info' });
  logger.__sink = sink;
  return logger;
}

/**
 * One configuration (8 or 58 configs): a warm-up rotation, then `rounds` interleaved
 * rounds of {sequential floor, concurrent floor, rotation}.
 */
export async function measureWindow({ projects, rounds, onRound, settings = {} }) {
  const api = await startFakeCertorix();
  instrumentFake(api);
  const email = `bench-${projects}@example.com`;
  const token = api.addToken({ email, ageDays: 100 });
  const h = await makeHome({ token, projects, apiUrl: api.url, settings });
  try {
    await patchFileHandleSync(h.files[0].path);
    const ctx = new Context({
      pathEnv: { platform: 'linux', home: h.home, env: { HOME: h.home, CERTORIX_API_URL: api.url } },
      logger: makeLogger(),
      now: () => new Date(),
    });
    try {
      // What a user has before rotating: a scan recorded, the store open.
      recordScan(ctx, await findTokens(ctx));
      await rotateRound(ctx, api, h.home); // warm-up: JIT, module loads, first backups
      const files = h.files.map((f) => f.path);
      const seq = [];
      const par = [];
      const rot = [];
      for (let i = 0; i < rounds; i++) {
        seq.push(await floorRound(files, 'sequential'));
        par.push(await floorRound(files, 'concurrent'));
        rot.push(await rotateRound(ctx, api, h.home));
        onRound?.(i);
      }
      const live = api.liveTokens(email);
      if (live.length !== 1 || fingerprint(live[0].token) !== fingerprint(live[0].token)) throw new Error('fake API lost track of the token');
      const pick = (k) => summarize(rot.map((r) => r[k]));
      const floorSeq = summarize(seq);
      const floorPar = summarize(par);
      return {
        configs: h.files.length,
        dirs: dirsOf(files).length,
        rounds,
        floorSeq,
        floorPar,
        floor: floorSeq.median <= floorPar.median ? { ...floorSeq, mode: 'sequential' } : { ...floorPar, mode: 'concurrent' },
        window: pick('window'),
        full: pick('full'),
        preflight: pick('preflight'),
        toJournaled: pick('toJournaled'),
        toVerifyCall: pick('toVerifyCall'),
        afterDurable: pick('afterDurable'),
        syncCount: rot[0]?.syncCount,
      };
    } finally {
      await ctx.close();
    }
  } finally {
    await api.close();
    await h.cleanup();
  }
}

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const PROBE = fileURLToPath(new URL('./fsync-probe.mjs', import.meta.url));

function runCli(args, env) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, ['--import', PROBE, CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: now() - t0 }));
  });
}

/**
 * The same window, as a user gets it: `mcp-token-rotator rotate` in a fresh process (cold
 * code, nothing cached), the fake API in this process. The child's fsync times come from a
 * preloaded probe (fsync-probe.mjs) on the shared wall clock (timeOrigin + now()).
 */
export async function measureWindowCli({ projects, rounds, onRound }) {
  const api = await startFakeCertorix();
  instrumentFake(api);
  const token = api.addToken({ email: `bench-cli-${projects}@example.com`, ageDays: 100 });
  const h = await makeHome({ token, projects, apiUrl: api.url });
  const { readFileSync, rmSync } = await import('node:fs');
  const outFile = path.join(h.home, 'fsync-times.json');
  try {
    const env = { ...h.env, BENCH_FSYNC_OUT: outFile };
    const first = await runCli(['scan', '--json'], env);
    if (first.code !== 0) throw new Error(`scan: ${first.stderr}`);
    const files = h.files.map((f) => f.path);
    const win = [];
    const full = [];
    const par = [];
    const rotateOnce = async () => {
      const before = api.requests.length;
      syncAll();
      rmSync(outFile, { force: true });
      const r = await runCli(['rotate', '--json'], env);
      if (r.code !== 0) throw new Error(`rotate exited ${r.code}: ${r.stderr}`);
      const regen = api.requests.slice(before).find((q) => q.path === REGEN && q.status === 201);
      const times = JSON.parse(readFileSync(outFile, 'utf8')).filter((t) => t >= regen.answeredAtEpoch);
      return { window: Math.max(...times) - regen.answeredAtEpoch, full: r.ms };
    };
    await rotateOnce(); // warm-up: page cache, first backups
    for (let i = 0; i < rounds; i++) {
      par.push(await floorRound(files, 'concurrent'));
      const r = await rotateOnce();
      win.push(r.window);
      full.push(r.full);
      onRound?.(i);
    }
    return { configs: files.length, rounds, window: summarize(win), full: summarize(full), floorPar: summarize(par) };
  } finally {
    await api.close();
    await h.cleanup();
  }
}
