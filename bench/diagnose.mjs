#!/usr/bin/env node
// Why a bench target is missed: measurements behind the causes reported with the results.
// Not part of `npm run bench` (it takes a few minutes more). Build first (npx tsc -p tsconfig.json).
//
//   node bench/diagnose.mjs                 every section
//   node bench/diagnose.mjs window idle     some: window, cliwindow, idle, cli
//
// window     in-process rotation of 58 configs: every fs call in the breakage window on a
//            timeline (wrapped node:fs/promises), and the CPU cost of replaceToken on the 58 files
// cliwindow  `rotate` in a fresh process with --cpu-prof; the samples inside the window (201 sent
//            -> last fsync) attributed to the first src/ frame on their stack
// idle       RSS of a bare node importing each dependency; the daemon with V8's young generation
//            capped; when V8's memory-reducer GC runs after start (--trace-gc)
// cli        `status --json` phase by phase, and the import time of each dependency
import './lib/timeline-probe.mjs';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHome } from './lib/home.mjs';
import { instrumentFake, makeLogger, syncAll } from './lib/window.mjs';
import { memOf, cpuOf } from './lib/proc.mjs';
import { fmtMs, fmtMiB, mdTable, sleep, summarize, now } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const dist = new URL('../dist/', import.meta.url);
const { startFakeCertorix } = await import(new URL('test/fake/certorix.js', dist));
const { Context } = await import(new URL('src/context.js', dist));
const { rotateTokens } = await import(new URL('src/rotation/run.js', dist));
const { brokerPort } = await import(new URL('src/broker/rotation-port.js', dist));
const { findTokens, recordScan } = await import(new URL('src/scan.js', dist));

const sections = process.argv.slice(2).length ? new Set(process.argv.slice(2)) : new Set(['window', 'cliwindow', 'idle', 'cli']);
const say = (s = '') => process.stdout.write(s + '\n');
const med = (a) => summarize(a).median;
const tl = globalThis.__benchTimeline;

function spawnNode(args, env, { stdout = 'ignore', stderr = 'pipe' } = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', stdout, stderr] });
    let out = '';
    let err = '';
    c.stdout?.on('data', (d) => (out += d));
    c.stderr?.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

// ------------------------------------------------------------------------------------------
if (sections.has('window')) {
  say('## window: 58 configs, in-process rotation, every fs call in the window (median of 7 rounds)\n');
  const api = await startFakeCertorix();
  instrumentFake(api);
  const token = api.addToken({ email: 'diag@example.com', ageDays: 100 });
  const h = await makeHome({ token, projects: 50, apiUrl: api.url });
  const ctx = new Context({ pathEnv: { platform: 'linux', home: h.home, env: { HOME: h.home, CERTORIX_API_URL: api.url } }, logger: makeLogger() });
  recordScan(ctx, await findTokens(ctx));
  const phases = {};
  const counts = {};
  for (let i = 0; i < 8; i++) {
    const fp = [...(await findTokens(ctx)).tokens.keys()][0];
    ctx.log.__sink.lines = [];
    const before = api.requests.length;
    syncAll();
    tl.events = [];
    tl.on = true;
    const t0 = now();
    await rotateTokens(ctx, [fp], { source: 'manual', broker: brokerPort });
    const t1 = now();
    tl.on = false;
    if (i === 0) continue; // warm-up
    const sent = api.requests.slice(before).find((r) => r.path === '/v1/token/regenerate').answeredAt;
    const ev = tl.events.filter((e) => e.s >= sent);
    const syncs = ev.filter((e) => e.name === 'fh.sync');
    const lastDurable = Math.max(...syncs.map((e) => e.e));
    const inWin = ev.filter((e) => e.e <= lastDurable);
    const tmpOpens = inWin.filter((e) => e.name === 'open' && e.arg.includes('.mtr-'));
    const add = (k, v) => (phases[k] ??= []).push(v);
    add('"token regenerated" logged (new token journaled, WAL fsync)', ctx.log.__sink.lines.find((l) => l.msg === 'token regenerated').at - sent);
    add('first temp file opened', Math.min(...tmpOpens.map((e) => e.s)) - sent);
    add('last temp file open issued (the main thread between: replaceToken per file)', Math.max(...tmpOpens.map((e) => e.s)) - sent);
    add('first fsync issued', Math.min(...syncs.map((e) => e.s)) - sent);
    add('last rename done', Math.max(...inWin.filter((e) => e.name === 'rename').map((e) => e.e)) - sent);
    add('last config durable (end of the window)', lastDurable - sent);
    add('rotateTokens resolved', t1 - sent);
    add('(rotateTokens start -> 201 sent)', sent - t0);
    for (const e of inWin) (counts[e.name] ??= []).push(1);
  }
  const rounds = 7;
  say(mdTable(['ms after the 201 was sent', 'median', 'min..max'], Object.entries(phases).map(([k, v]) => { const s = summarize(v); return [k, fmtMs(s.median), `${fmtMs(s.min)}..${fmtMs(s.max)}`]; })));
  say('\nfs calls inside the window, per rotation: ' + Object.entries(counts).map(([k, v]) => `${k} ${v.length / rounds}`).join(', '));
  say('(the floor makes, per file: open, writeFile, sync, close, rename; then one open+sync+close per directory)\n');
  await ctx.close();
  await api.close();
  await h.cleanup();

  // replaceToken CPU on the same 58 files, in a fresh process: pass 1 is what a CLI preflight
  // pays, pass 2 what the CLI pays again inside the window, pass 20 a warm daemon.
  const script = `
    const { replaceToken } = await import(${JSON.stringify(new URL('src/clients/edit.js', dist).href)});
    const { CLIENT_FIXTURES, projectConfig } = await import(${JSON.stringify(new URL('./lib/home.mjs', import.meta.url).href)});
    const fmt = { 'claude-desktop': 'json', 'claude-code': 'json', cursor: 'json', vscode: 'jsonc', windsurf: 'json', zed: 'jsonc', gemini: 'jsonc', codex: 'toml' };
    const a = 'ctx_' + 'A1b2'.repeat(10), b = 'ctx_' + 'Z9y8'.repeat(10);
    const files = [...CLIENT_FIXTURES.map((f) => [fmt[f.client], f.content(a)]), ...Array.from({ length: 50 }, (_, i) => ['jsonc', projectConfig(a, i)])];
    const out = [];
    for (let p = 1; p <= 20; p++) { const t = performance.now(); for (const [f, x] of files) replaceToken(x, f, a, b); out.push(performance.now() - t); }
    const t = performance.now(); for (const [, x] of files) x.split(a).join(b); const sub = performance.now() - t;
    console.log(JSON.stringify({ out, sub }));`;
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const r = await spawnNode(['--input-type=module', '-e', script], process.env, { stdout: 'pipe' });
    runs.push(JSON.parse(r.out));
  }
  say(mdTable(['replaceToken over the 58 files (fresh process, median of 5)', 'ms'], [
    ['pass 1 (cold: what the preflight pays)', fmtMs(med(runs.map((r) => r.out[0])))],
    ['pass 2 (what a CLI `rotate` pays again inside the window)', fmtMs(med(runs.map((r) => r.out[1])))],
    ['pass 20 (warm JIT)', fmtMs(med(runs.map((r) => r.out[19])))],
    ['plain substitution of a planned text (split/join), for comparison', fmtMs(med(runs.map((r) => r.sub)))],
  ]));
  say();
}

// ------------------------------------------------------------------------------------------
if (sections.has('cliwindow')) {
  say('## cliwindow: `rotate` (58 configs) in a fresh process with --cpu-prof; samples inside the window\n');
  const api = await startFakeCertorix();
  let sentUs = 0;
  api.requests.push = function (...recs) {
    for (const r of recs) {
      let st = 0;
      Object.defineProperty(r, 'status', { get: () => st, set: (v) => { st = v; if (r.path === '/v1/token/regenerate') sentUs = Number(process.hrtime.bigint() / 1000n); } });
    }
    return Array.prototype.push.apply(this, recs);
  };
  const token = api.addToken({ email: 'diag-cli@example.com', ageDays: 100 });
  const h = await makeHome({ token, projects: 50, apiUrl: api.url });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mtr-diag-'));
  // The child records fsync completions on CLOCK_MONOTONIC in microseconds, the clock of V8's profile timestamps.
  const probe = path.join(tmp, 'mono-probe.mjs');
  writeFileSync(probe, `import { open } from 'node:fs/promises'; import { writeFileSync } from 'node:fs';
    const t = []; const fh = await open(process.execPath, 'r'); const p = Object.getPrototypeOf(fh); await fh.close();
    const o = p.sync; p.sync = async function (...a) { const r = await o.apply(this, a); t.push(Number(process.hrtime.bigint() / 1000n)); return r; };
    const off = Date.now() * 1000 - Number(process.hrtime.bigint() / 1000n);
    process.on('exit', () => writeFileSync(process.env.MONO_OUT, JSON.stringify({ t, off })));`);
  // info-level logs on stderr: the "token regenerated" line splits the window in two.
  const env = { ...h.env, MONO_OUT: path.join(tmp, 'mono.json'), MCP_TOKEN_ROTATOR_LOG_LEVEL: 'info' };
  await spawnNode([CLI, 'scan'], env);
  await spawnNode(['--import', probe, CLI, 'rotate'], env);
  const agg = new Map();
  const aggA = new Map();
  let sampled = 0;
  let sampledA = 0;
  const windows = [];
  const journaled = [];
  const N = 5;
  for (let k = 0; k < N; k++) {
    const profDir = path.join(tmp, `prof${k}`);
    syncAll();
    const r = await spawnNode(['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200', '--import', probe, CLI, 'rotate'], env);
    const mono = JSON.parse(readFileSync(env.MONO_OUT, 'utf8'));
    const endUs = Math.max(...mono.t.filter((t) => t >= sentUs));
    windows.push((endUs - sentUs) / 1000);
    const line = r.err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.msg === 'token regenerated');
    // pino's time has ms precision; good enough to split the window.
    const journaledUs = Date.parse(line.time) * 1000 - mono.off;
    journaled.push((journaledUs - sentUs) / 1000);
    const p = JSON.parse(readFileSync(path.join(profDir, readdirSync(profDir)[0]), 'utf8'));
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i];
      if (t < sentUs || t > endUs) continue;
      const dt = p.timeDeltas[i + 1] ?? 0;
      sampled += dt;
      const early = t <= journaledUs;
      if (early) sampledA += dt;
      const leaf = byId.get(p.samples[i]).callFrame;
      let key = null;
      for (let cur = p.samples[i]; cur !== undefined; cur = parent.get(cur)) {
        const cf = byId.get(cur).callFrame;
        if (cf.url.includes('/dist/src/')) {
          key = `${cf.functionName || '(anonymous)'} (${cf.url.replace(/.*\/dist\//, '')})`;
          break;
        }
      }
      key ??= ['(idle)', '(program)', '(garbage collector)'].includes(leaf.functionName) ? leaf.functionName : `other: ${leaf.functionName || leaf.url}`;
      agg.set(key, (agg.get(key) ?? 0) + dt);
      if (early) {
        const leafKey = `${leaf.functionName || '(anonymous)'} (${leaf.url.replace(/.*\/(node_modules|dist)\//, '$1/') || 'native'})`;
        aggA.set(leafKey, (aggA.get(leafKey) ?? 0) + dt);
      }
    }
  }
  say(`windows: ${windows.map((w) => fmtMs(w)).join(', ')} (with the profiler on); sampled time in the windows, per run: ${fmtMs(sampled / 1000 / N)}\n`);
  say(mdTable(['whole window: first src/ frame on the stack (idle = waiting for I/O)', 'ms per run'], [...agg].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => [k, fmtMs(v / 1000 / N)])));
  say(`\n201 sent -> "token regenerated" logged (new token journaled): ${journaled.map((j) => fmtMs(j)).join(', ')}; sampled ${fmtMs(sampledA / 1000 / N)} per run, by leaf function:\n`);
  say(mdTable(['201 -> journaled: leaf function', 'ms per run'], [...aggA].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => [k, fmtMs(v / 1000 / N)])));
  say();
  await api.close();
  await h.cleanup();
  rmSync(tmp, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------------------
if (sections.has('idle')) {
  say('## idle: where the daemon\'s memory goes\n');
  const api = await startFakeCertorix();
  const token = api.addToken({ email: 'diag-idle@example.com', ageDays: 30 });
  const h = await makeHome({ token, projects: 50, apiUrl: api.url });
  const idleRss = async (args, settleMs = 3000) => {
    const c = spawn(process.execPath, args, { env: h.env, stdio: ['ignore', 'pipe', 'ignore'], cwd: ROOT });
    await new Promise((r) => c.stdout.on('data', (d) => d.toString().includes('READY') && r()));
    await sleep(settleMs);
    const m = memOf(c.pid);
    c.kill('SIGTERM');
    await new Promise((r) => c.on('exit', r));
    return m;
  };
  const idle = (body) => ['--input-type=module', '-e', `${body}; setInterval(() => {}, 1e9); console.log('READY');`];
  const rows = [];
  const base = await idleRss(idle(''));
  rows.push(['bare node', fmtMiB(base.rssKb), '-']);
  const deps = ['pino', 'better-sqlite3', 'chokidar', 'node-cron', 'zod', 'undici', 'jsonc-parser', 'yaml', 'smol-toml', 'tinyglobby', 'proper-lockfile'];
  for (const d of deps) {
    const m = await idleRss(idle(`await import('${d}')`));
    rows.push([`bare node + import '${d}'`, fmtMiB(m.rssKb), `+${fmtMiB(m.rssKb - base.rssKb)}`]);
  }
  const all = await idleRss(idle(`for (const d of ${JSON.stringify(deps)}) await import(d)`));
  rows.push(['bare node + import all of them', fmtMiB(all.rssKb), `+${fmtMiB(all.rssKb - base.rssKb)}`]);
  const srv = `const s = (await import('node:http')).createServer((q, r) => r.end('{}')).listen(0); await new Promise((r) => s.once('listening', r)); const url = 'http://127.0.0.1:' + s.address().port;`;
  const u = await idleRss(idle(`${srv} const { request } = await import('undici'); const r = await request(url); await r.body.text(); s.close()`));
  rows.push(['bare node + one request with undici', fmtMiB(u.rssKb), `+${fmtMiB(u.rssKb - base.rssKb)} (peak VmHWM ${fmtMiB(u.hwmKb)})`]);
  const nh = await idleRss(idle(`${srv} const http = await import('node:http'); await new Promise((ok) => http.get(url, (r) => { r.resume(); r.on('end', ok); })); s.close()`));
  rows.push(['bare node + one request with node:http', fmtMiB(nh.rssKb), `+${fmtMiB(nh.rssKb - base.rssKb)} (peak VmHWM ${fmtMiB(nh.hwmKb)})`]);
  say(mdTable(['process (idle 3 s, same env as the daemon)', 'RSS', 'over bare node'], rows));

  // The daemon, first start in a fresh HOME each time, RSS 15 s after "daemon started" (past the memory-reducer GC).
  const daemonRss = async (nodeArgs) => {
    const token2 = api.addToken({ email: `diag-idle-${Math.random()}@example.com`, ageDays: 30 });
    const h2 = await makeHome({ token: token2, projects: 50, apiUrl: api.url });
    const c = spawn(process.execPath, [...nodeArgs, CLI, 'daemon'], { env: h2.env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const t0 = now();
    await new Promise((r) => c.stdout.on('data', (d) => { out += d; if (out.includes('daemon started')) r(); }));
    const startedAt = now() - t0;
    const ticks = [];
    let prev = cpuOf(c.pid).ticks;
    for (let i = 0; i < 15; i++) {
      await sleep(1000);
      const t = cpuOf(c.pid).ticks;
      ticks.push(t - prev);
      prev = t;
    }
    const m = memOf(c.pid);
    c.kill('SIGTERM');
    await new Promise((r) => c.on('exit', r));
    await h2.cleanup();
    const gcs = out.split('\n').filter((l) => /Mark-Compact \(reduce\)/.test(l)).map((l) => Number(/\s(\d+) ms: /.exec(l)?.[1]));
    return { m, ticks, startedAt, gcs };
  };
  const d0 = await daemonRss(['--trace-gc']);
  const d1 = await daemonRss(['--max-semi-space-size=1']);
  say();
  say(mdTable(['daemon, first start, 58 configs', 'RSS 15 s after "daemon started"', 'RssAnon / RssFile', 'CPU ticks in each of the 15 s after "daemon started"'], [
    ['as shipped', fmtMiB(d0.m.rssKb), `${fmtMiB(d0.m.anonKb)} / ${fmtMiB(d0.m.fileKb)}`, d0.ticks.join(' ')],
    ['node --max-semi-space-size=1', fmtMiB(d1.m.rssKb), `${fmtMiB(d1.m.anonKb)} / ${fmtMiB(d1.m.fileKb)}`, d1.ticks.join(' ')],
  ]));
  say(`\n"daemon started" came ${fmtMs(d0.startedAt)} after spawn; V8 memory-reducer GCs ("Mark-Compact (reduce)", --trace-gc) at ${d0.gcs.map((g) => `${(g / 1000).toFixed(1)} s`).join(', ') || 'none'} after process start.\n`);
  await api.close();
  await h.cleanup();
}

// ------------------------------------------------------------------------------------------
if (sections.has('cli')) {
  say('## cli: `status --json` (2 tokens, 58 configs) phase by phase, fresh process, median of 9\n');
  const api = await startFakeCertorix();
  const t1 = api.addToken({ email: 'diag-cli1@example.com', ageDays: 10 });
  const t2 = api.addToken({ email: 'diag-cli2@example.com', ageDays: 95 });
  const h = await makeHome({ token: t1, otherToken: t2, projects: 50, apiUrl: api.url });
  await spawnNode([CLI, 'scan'], h.env);
  const phasesScript = fileURLToPath(new URL('./lib/status-phases.mjs', import.meta.url));
  const runs = [];
  for (let i = 0; i < 9; i++) runs.push(JSON.parse((await spawnNode([phasesScript], h.env)).err.trim().split('\n').pop()));
  say(mdTable(['phase', 'ms'], [
    ...runs[0].marks.map((m, i) => [m[0], fmtMs(med(runs.map((r) => r.marks[i][1])))]),
    ['(process start -> end of the script)', fmtMs(med(runs.map((r) => r.sinceProcessStart)))],
  ]));
  const base = [];
  for (let i = 0; i < 9; i++) base.push(Number((await spawnNode(['-e', 'process.stderr.write(String(performance.now()))'], h.env)).err));
  say(`\n(node -e '' reaches its script after ${fmtMs(med(base))} of the same clock)\n`);
  const rows = [];
  for (const m of ['zod', 'undici', 'pino', 'better-sqlite3', 'chokidar', 'yaml', 'smol-toml', 'jsonc-parser', 'tinyglobby', 'node-cron']) {
    const ts = [];
    for (let i = 0; i < 5; i++) ts.push(Number((await spawnNode(['--input-type=module', '-e', `const t = performance.now(); await import('${m}'); process.stderr.write(String(performance.now() - t));`], { ...h.env }, {})).err));
    rows.push([m, fmtMs(med(ts))]);
  }
  say(mdTable(['import in a fresh process (median of 5)', 'ms'], rows));
  say();
  await api.close();
  await h.cleanup();
}
