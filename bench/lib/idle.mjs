// Measure 2: an idle daemon's memory and CPU, against an idle bare node process measured
// the same way over the same seconds.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeHome } from './home.mjs';
import { cpuOf, memOf, clockTicks } from './proc.mjs';
import { sleep, summarize } from './stats.mjs';

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const { startFakeCertorix } = await import(new URL('../../dist/test/fake/certorix.js', import.meta.url));

function waitForLine(child, pred, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buf = '';
    let all = '';
    const t = setTimeout(() => reject(new Error(`no matching line in ${timeoutMs} ms; output:\n${all}`)), timeoutMs);
    const onData = (d) => {
      buf += d.toString();
      all += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let o;
        try {
          o = JSON.parse(line);
        } catch {
          continue;
        }
        if (pred(o)) {
          clearTimeout(t);
          resolve(o);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (all += d.toString()));
    child.once('exit', (code) => reject(new Error(`exited with ${code} before the line; output:\n${all}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/**
 * Both processes run at once, so the same 60 seconds (and the same machine load) apply to both.
 * `extraArgs` lets a diagnosis run preload a probe.
 */
export async function measureIdle({ settleMs = 5000, windowMs = 60_000, projects = 50, sampleEveryMs = 5000, nodeArgs = [] } = {}) {
  const api = await startFakeCertorix();
  const token = api.addToken({ email: 'idle@example.com', ageDays: 30 });
  const h = await makeHome({ token, projects, apiUrl: api.url });
  const daemon = spawn(process.execPath, [...nodeArgs, CLI, 'daemon'], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' });
  let drained = '';
  try {
    const t0 = performance.now();
    const started = await waitForLine(daemon, (o) => o.msg === 'daemon started', 30_000);
    const startMs = performance.now() - t0;
    daemon.stdout.on('data', (d) => (drained += d.toString()));
    await sleep(settleMs);
    const procs = { daemon: daemon.pid, bare: bare.pid };
    const cpu0 = { daemon: cpuOf(procs.daemon), bare: cpuOf(procs.bare) };
    const rss = { daemon: [], bare: [] };
    const sample = () => {
      for (const k of Object.keys(procs)) rss[k].push(memOf(procs[k]));
    };
    sample();
    const tStart = performance.now();
    while (performance.now() - tStart < windowMs - 1) {
      await sleep(Math.min(sampleEveryMs, windowMs - (performance.now() - tStart)));
      sample();
    }
    const elapsed = (performance.now() - tStart) / 1000;
    const cpu1 = { daemon: cpuOf(procs.daemon), bare: cpuOf(procs.bare) };
    const out = {};
    for (const k of Object.keys(procs)) {
      out[k] = {
        rss: summarize(rss[k].map((m) => m.rssKb)),
        last: rss[k][rss[k].length - 1],
        cpuTicks: cpu1[k].ticks - cpu0[k].ticks,
        cpuSeconds: cpu1[k].seconds - cpu0[k].seconds,
      };
    }
    const logLinesWhileIdle = drained.split('\n').filter((l) => l.trim()).length;
    return { ...out, elapsed, clkTck: clockTicks(), startMs, started, logLinesWhileIdle, configs: h.files.length };
  } finally {
    await Promise.all([stop(daemon), stop(bare)]);
    await api.close();
    await h.cleanup();
  }
}
