// Measure 2: an idle daemon's memory and CPU, against an idle bare node process measured
// the same way over the same seconds. All processes run at once, so the same 60 seconds
// (and the same machine load) apply to each.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeHome } from './home.mjs';
import { cpuOf, memOf, clockTicks } from './proc.mjs';
import { now, sleep, summarize } from './stats.mjs';

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
// Started the way the service unit starts it.
const { DAEMON_NODE_OPTIONS } = await import('../../dist/src/service/render.js');
const { startFakeCertorix } = await import(new URL('../../dist/test/fake/certorix.js', import.meta.url));

export const BARE_IDLE_SCRIPT = 'setInterval(()=>{},1e9)';

/** Resolves with the first pino JSON line on stdout that `pred` accepts. */
function waitForLine(child, pred, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buf = '';
    let all = '';
    const t = setTimeout(() => reject(new Error(`no matching line in ${timeoutMs} ms; output:\n${all}`)), timeoutMs);
    const onExit = (code) => reject(new Error(`exited with ${code} before the line; output:\n${all}`));
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
          child.stdout.off('data', onData);
          child.off('exit', onExit);
          resolve(o);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (all += d.toString()));
    child.once('exit', onExit);
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

async function startDaemon(h, nodeArgs = DAEMON_NODE_OPTIONS) {
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'daemon'], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const t0 = now();
  const started = await waitForLine(child, (o) => o.msg === 'daemon started', 30_000);
  const out = { child, started, startMs: now() - t0, logLines: 0 };
  child.stdout.on('data', (d) => (out.logLines += d.toString().split('\n').filter((l) => l.trim()).length));
  return out;
}

/**
 * `fresh`: the daemon's first start in a HOME with 58 configs (empty state: it records the
 * configs and asks the API about the new token), as in the brief.
 * `restart`: the same set-up, but the daemon ran once before and was stopped (state exists,
 * nothing new to ask the API): what a login or reboot looks like afterwards. For information.
 */
export async function measureIdle({ settleMs = 5000, windowMs = 60_000, projects = 50, sampleEveryMs = 5000, restart = true } = {}) {
  const api = await startFakeCertorix();
  const homes = [];
  const procs = {};
  try {
    const mk = async (name) => {
      const token = api.addToken({ email: `idle-${name}@example.com`, ageDays: 30 });
      const h = await makeHome({ token, projects, apiUrl: api.url });
      homes.push(h);
      return h;
    };
    const hFresh = await mk('fresh');
    const hRestart = restart ? await mk('restart') : null;
    if (hRestart) {
      const first = await startDaemon(hRestart);
      await stop(first.child);
    }
    procs.daemon = await startDaemon(hFresh);
    if (hRestart) procs.restart = await startDaemon(hRestart);
    // Same environment as the daemon (the caller's may hold NODE_OPTIONS or NODE_EXTRA_CA_CERTS).
    procs.bare = { child: spawn(process.execPath, ['-e', BARE_IDLE_SCRIPT], { env: hFresh.env, stdio: 'ignore' }), logLines: 0 };
    await sleep(settleMs);
    const names = Object.keys(procs);
    const logBefore = Object.fromEntries(names.map((k) => [k, procs[k].logLines]));
    const cpu0 = Object.fromEntries(names.map((k) => [k, cpuOf(procs[k].child.pid)]));
    const rss = Object.fromEntries(names.map((k) => [k, []]));
    const cpuSamples = Object.fromEntries(names.map((k) => [k, []]));
    const sample = () => {
      for (const k of names) {
        rss[k].push(memOf(procs[k].child.pid));
        cpuSamples[k].push({ at: now(), ticks: cpuOf(procs[k].child.pid).ticks });
      }
    };
    sample();
    const tStart = now();
    while (now() - tStart < windowMs - 1) {
      await sleep(Math.min(sampleEveryMs, windowMs - (now() - tStart)));
      sample();
    }
    const elapsed = (now() - tStart) / 1000;
    const out = {};
    for (const k of names) {
      const c1 = cpuOf(procs[k].child.pid);
      out[k] = {
        rss: summarize(rss[k].map((m) => m.rssKb)),
        last: rss[k][rss[k].length - 1],
        cpuTicks: c1.ticks - cpu0[k].ticks,
        cpuSeconds: c1.seconds - cpu0[k].seconds,
        startMs: procs[k].startMs,
        logLinesWhileIdle: procs[k].logLines - logBefore[k],
        // CPU ticks in each sampling interval, to tell a steady cost from a one-off burst.
        ticksPerInterval: cpuSamples[k].slice(1).map((c, i) => c.ticks - cpuSamples[k][i].ticks),
      };
    }
    return { ...out, elapsed, settleMs, sampleEveryMs, clkTck: clockTicks(), configs: hFresh.files.length, started: procs.daemon.started };
  } finally {
    await Promise.all(Object.values(procs).map((p) => stop(p.child)));
    await api.close();
    for (const h of homes) await h.cleanup();
  }
}
