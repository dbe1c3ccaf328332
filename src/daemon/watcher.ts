import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { DaemonCore } from './core.js';

/**
 * Watches the directories of every config the catalog or extraConfigs could name (not the
 * files: editors and clients replace files by rename, which a file watch loses), with
 * inotify/FSEvents and no polling. A directory that does not exist yet is covered by its
 * nearest existing ancestor, so a config created later is still seen.
 */

export interface WatchPlan {
  /** Directories watched at depth 0. */
  dirs: string[];
  /** Roots of extraConfigs globs, watched as deep as the pattern reaches. */
  globRoots: Array<{ dir: string; depth: number | undefined }>;
  /** Paths whose events matter: candidate files (and their symlink targets) and their ancestors. */
  relevant: Set<string>;
}

function nearestExisting(dir: string, stop: string): string {
  let d = dir;
  for (;;) {
    if (existsSync(d)) return d;
    const up = path.dirname(d);
    if (up === d || d === stop) return d;
    d = up;
  }
}

/** Splits a glob into its literal root and the depth its pattern part reaches. */
export function globRoot(pattern: string): { dir: string; depth: number | undefined } {
  const parts = pattern.split('/');
  const i = parts.findIndex((p) => /[*?[\]{}]/.test(p));
  if (i < 0) return { dir: path.dirname(pattern), depth: 0 };
  const rest = parts.slice(i);
  return { dir: parts.slice(0, i).join('/') || '/', depth: rest.includes('**') ? undefined : rest.length - 1 };
}

export function planWatch(candidateFiles: string[], globs: string[], home: string): WatchPlan {
  const dirs = new Set<string>();
  const relevant = new Set<string>();
  for (const f of candidateFiles) {
    const abs = path.resolve(f);
    relevant.add(abs);
    for (let d = path.dirname(abs); ; d = path.dirname(d)) {
      relevant.add(d);
      if (d === path.dirname(d) || d === home) break;
    }
    dirs.add(nearestExisting(path.dirname(abs), home));
    // A symlinked config (dotfiles) changes at its target, in another directory.
    try {
      const real = realpathSync(abs);
      if (real !== abs) {
        relevant.add(real);
        dirs.add(path.dirname(real));
      }
    } catch {
      /* not there yet, or dangling */
    }
  }
  const globRoots = globs.map((g) => {
    const r = globRoot(g);
    return { dir: nearestExisting(r.dir, home), depth: r.dir === nearestExisting(r.dir, home) ? r.depth : undefined };
  });
  return { dirs: [...dirs].sort(), globRoots, relevant };
}

export function isRelevant(plan: WatchPlan, p: string): boolean {
  if (plan.relevant.has(p)) return true;
  return plan.globRoots.some((g) => p === g.dir || p.startsWith(g.dir + path.sep));
}

export interface ConfigWatcher {
  /** Re-plan (after a directory appeared or the settings changed). */
  update(plan: WatchPlan): void;
  close(): Promise<void>;
}

export async function startWatcher(plan: WatchPlan, onChange: (paths: string[]) => void, opts: { debounceMs?: number } = {}): Promise<ConfigWatcher> {
  const { watch } = await import('chokidar');
  let current = plan;
  const pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const fire = (p: string) => {
    if (!isRelevant(current, p)) return;
    pending.add(p);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const batch = [...pending];
      pending.clear();
      onChange(batch);
    }, opts.debounceMs ?? 300);
  };
  const make = (paths: string[], depth: number | undefined): FSWatcher => {
    const w = watch(paths, { ignoreInitial: true, persistent: true, usePolling: false, ...(depth === undefined ? {} : { depth }), followSymlinks: false, ignorePermissionErrors: true });
    for (const ev of ['add', 'change', 'unlink', 'addDir'] as const) w.on(ev, (p: string) => fire(path.resolve(p)));
    w.on('error', () => undefined);
    return w;
  };
  let watchers: FSWatcher[] = [];
  const build = (p: WatchPlan) => {
    const ws = [make(p.dirs, 0)];
    for (const g of p.globRoots) ws.push(make([g.dir], g.depth));
    return ws;
  };
  watchers = build(plan);
  await Promise.all(watchers.map((w) => new Promise<void>((r) => w.once('ready', () => r()))));
  return {
    update(next) {
      const same = JSON.stringify([next.dirs, next.globRoots]) === JSON.stringify([current.dirs, current.globRoots]);
      const old0 = current;
      current = next;
      if (same) return;
      const added = next.dirs.filter((d) => !old0.dirs.includes(d)).concat(next.globRoots.map((g) => g.dir).filter((d) => !old0.globRoots.some((g) => g.dir === d)));
      const old = watchers;
      watchers = build(next);
      for (const w of old) void w.close();
      // Files created in a new directory before its watch was ready would be missed: look once.
      void Promise.all(watchers.map((w) => new Promise<void>((r) => w.once('ready', () => r())))).then(() => {
        if (added.length) onChange(added);
      });
    },
    async close() {
      clearTimeout(timer);
      await Promise.all(watchers.map((w) => w.close()));
    },
  };
}

/**
 * The daemon's watch: every catalog path and extraConfigs glob (as the settings in force
 * say; `refresh` re-plans after a rescan or SIGHUP), a change rescans through the queue.
 */
export async function startConfigWatcher(core: DaemonCore, debounceMs: number): Promise<{ refresh(): void; close(): Promise<void> }> {
  const { ctx, log } = core;
  const { CATALOG } = await import('../clients/catalog.js');
  const { expandHome } = await import('../paths.js');
  const currentPlan = () => {
    const disabled = new Set(ctx.settings.disableClients);
    const files = CATALOG.filter((c) => !disabled.has(c.id)).flatMap((c) => c.paths(ctx.pathEnv));
    return planWatch(files, ctx.settings.extraConfigs.map((g) => expandHome(g, ctx.pathEnv.home)), ctx.pathEnv.home);
  };
  const watcher = await startWatcher(
    currentPlan(),
    (paths) => {
      if (core.stopping) return;
      void core.enqueue(() => core.rescan('watch', paths)).catch((e: unknown) => log.error({ err: (e as Error).message }, 'rescan failed'));
    },
    { debounceMs },
  );
  return { refresh: () => watcher.update(currentPlan()), close: () => watcher.close().catch(() => undefined) };
}
