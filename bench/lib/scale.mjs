// Measure 4: scale. Discovery of 1,000 project configs, and status/history with 100,000
// recorded events against the same commands with 100.
import { createRequire } from 'node:module';
import { makeHome } from './home.mjs';
import { CLI, timeCases, timeCli } from './cli.mjs';
import { now, summarize } from './stats.mjs';

const require = createRequire(import.meta.url);
const Database = require('../../node_modules/better-sqlite3');
const dist = new URL('../../dist/', import.meta.url);
const { Context } = await import(new URL('src/context.js', dist));
const { findTokens } = await import(new URL('src/scan.js', dist));
const { discoverConfigs } = await import(new URL('src/clients/discover.js', dist));

/** 1,000 project configs (no client files): in-process discovery+parse, and the CLI's scan --offline. */
export async function measureDiscovery({ projects = 1000, runs = 5 } = {}) {
  const token = 'ctx_' + 'Ab3'.repeat(13) + 'x';
  const h = await makeHome({ token, projects, clients: false });
  try {
    const pathEnv = { platform: 'linux', home: h.home, env: { HOME: h.home } };
    const ctx = new Context({ pathEnv });
    const discover = [];
    const find = [];
    // One untimed warm-up (module loads, JIT, page cache).
    await findTokens(ctx);
    for (let i = 0; i < runs; i++) {
      let t0 = now();
      const cands = await discoverConfigs({ pathEnv, extraConfigs: ctx.settings.extraConfigs, disableClients: [] });
      discover.push(now() - t0);
      t0 = now();
      const res = await findTokens(ctx);
      find.push(now() - t0);
      if (cands.length !== projects || res.configs.length !== projects) throw new Error(`found ${res.configs.length} configs, expected ${projects}`);
    }
    await ctx.close();
    const cli = await timeCases([{ name: 'scan-offline', args: [CLI, 'scan', '--offline', '--json'], env: h.env }], runs);
    const first = await (async () => {
      // A fresh state dir: the first scan also records 1,000 configs.
      const h2 = await makeHome({ token, projects, clients: false });
      try {
        return (await timeCli(['scan', '--offline', '--json'], { env: h2.env })).ms;
      } finally {
        await h2.cleanup();
      }
    })();
    return { projects, discover: summarize(discover), find: summarize(find), scanOffline: cli['scan-offline'], firstScanOfflineMs: first };
  } finally {
    await h.cleanup();
  }
}

const TYPES = ['rotated', 'healed', 'adopted', 'rotation-failed', 'rotation-refused'];
const SOURCES = ['manual', 'schedule', 'watch', 'set-token', 'revoke-now'];

/** Writes `n` events straight into the events table, oldest first, ending a minute ago. */
export function insertEvents(dbFile, n, configPaths) {
  const db = new Database(dbFile);
  try {
    const ins = db.prepare('INSERT INTO events(at, type, fingerprint, new_fingerprint, source, files, detail) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const end = Date.now() - 60_000;
    const step = 15 * 60_000; // one event every 15 minutes: 100,000 events span ~3 years
    const hex = (i) => (i * 2654435761 >>> 0).toString(16).padStart(8, '0') + 'abcd';
    const all = JSON.stringify(configPaths);
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const type = i % 50 === 0 ? 'rotated' : TYPES[1 + (i % (TYPES.length - 1))];
        // A rotation lists every file it rewrote; a heal one file.
        const files = type === 'rotated' ? all : JSON.stringify([configPaths[i % configPaths.length]]);
        ins.run(new Date(end - (n - i) * step).toISOString(), type, hex(i).slice(0, 12), type === 'rotation-failed' ? null : hex(i + 1).slice(0, 12), SOURCES[i % SOURCES.length], files, type === 'rotation-failed' ? 'bench: injected' : null);
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Two HOMEs alike (58 configs, 2 tokens, scanned) but for 100 vs 100,000 events. */
export async function measureEvents({ api, small = 100, large = 100_000, runs = 11 } = {}) {
  const t1 = api.addToken({ email: 'ev1@example.com', ageDays: 10 });
  const t2 = api.addToken({ email: 'ev2@example.com', ageDays: 40 });
  const homes = {};
  try {
    for (const [k, n] of [['small', small], ['large', large]]) {
      const h = await makeHome({ token: t1, otherToken: t2, projects: 50, apiUrl: api.url });
      homes[k] = h;
      const r = await timeCli(['scan', '--json'], { env: h.env });
      if (r.code !== 0) throw new Error(`scan failed: ${r.stderr}`);
      const t0 = now();
      insertEvents(h.db, n, h.files.map((f) => f.path));
      homes[k].insertMs = now() - t0;
    }
    const cases = [];
    for (const k of ['small', 'large']) {
      cases.push({ name: `status-${k}`, args: [CLI, 'status', '--json'], env: homes[k].env });
      cases.push({ name: `history-${k}`, args: [CLI, 'history', '--json'], env: homes[k].env });
    }
    const t = await timeCases(cases, runs);
    const check = await timeCli(['history', '--json'], { env: homes.large.env });
    const shown = JSON.parse(check.stdout).events.length;
    const { statSync } = await import('node:fs');
    return { small, large, times: t, historyShown: shown, dbBytesLarge: statSync(homes.large.db).size, insertMs: homes.large.insertMs };
  } finally {
    for (const h of Object.values(homes)) await h.cleanup();
  }
}
