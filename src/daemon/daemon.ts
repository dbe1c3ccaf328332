import { createHash, randomInt } from 'node:crypto';
import type { Context } from '../context.js';
import { RotatorError } from '../errors.js';
import type { Request } from '../ipc/protocol.js';
import { FileLock } from '../lock.js';
import { notify } from './notify.js';
import { noticeFor, shouldAutoRotate } from '../rotation/policy.js';
import { Secret } from '../secret.js';

export interface DaemonOptions {
  /** How often the wall clock is compared with the next check (wake detection). */
  tickMs?: number;
  /** How often token ages are checked. */
  checkEveryMs?: number;
  debounceMs?: number;
}

export interface RunningDaemon {
  stop(reason: string): Promise<void>;
  done: Promise<void>;
}

/**
 * The service: finish journaled work, scan, then serve the control socket, watch configs,
 * check ages on a wall-clock schedule, and (opt-in) rotate due tokens. Every mutation runs
 * through one queue, so the daemon never writes two things at once.
 */
export async function startDaemon(ctx: Context, opts: DaemonOptions = {}): Promise<RunningDaemon> {
  const log = ctx.log;
  const daemonLock = new FileLock(ctx.paths.daemonLock);
  if (!daemonLock.tryAcquire()) {
    throw new RotatorError('E_DAEMON_RUNNING', `Another mcp-token-rotator daemon is already running for ${ctx.paths.dir}.`, {
      hint: 'Use that one (commands reach it through its socket), or stop it first (systemctl --user stop mcp-token-rotator, or SIGTERM).',
    });
  }
  const { recoverIfNeeded } = await import('../rotation/recover.js');
  const { findTokens, recordScan, inspectTokens } = await import('../scan.js');
  const { buildStatus } = await import('../status.js');
  const { healRetired } = await import('../rotation/heal.js');
  const { rotateOp, revokeNowOp, setTokenOp } = await import('../operations.js');

  let queue: Promise<unknown> = Promise.resolve();
  let stopping = false;
  /** Runs fn after everything queued before it; errors are the caller's. */
  const enqueue = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  const lastHash = new Map<string, string>();
  // Live tokens this process has seen, in memory only, so a config restored with a retired
  // token can be healed even when no other config holds the current one.
  const remembered = new Map<string, Secret>();
  // Set once the watcher runs; a rescan before that has nothing to re-plan.
  let refreshWatch: () => void = () => undefined;
  const lastError = new Map<string, string>();

  /** Rescan; track new tokens; heal retired ones. Quiet when nothing changed. */
  const rescan = async (why: string, changed?: string[]) => {
    const scan = await findTokens(ctx);
    for (const [fp, t] of scan.tokens) if (ctx.store.getToken(fp)?.state !== 'retired') remembered.set(fp, t.secret);
    let news = false;
    for (const c of scan.configs) {
      const p = c.candidate.path;
      const h = c.snapshot ? contentHash(c.snapshot.bytes) : 'missing';
      if (lastHash.get(p) !== h) news = true;
      lastHash.set(p, h);
      if (c.status === 'error' && c.error) {
        if (lastError.get(p) !== c.error.message) log.warn({ file: p, err: c.error.message, hint: c.error.hint }, 'config cannot be read; keeping its last good view');
        lastError.set(p, c.error.message);
      } else lastError.delete(p);
    }
    if (!news && changed) return; // our own write, or a touch that changed nothing
    const { newFingerprints } = recordScan(ctx, scan);
    if (changed) log.info({ files: changed, reason: why }, 'configs changed; rescanned');
    if (newFingerprints.length) {
      log.info({ fingerprints: newFingerprints }, 'new token(s) found; asking the API for age and role');
      const list = newFingerprints.map((fp) => [fp, (scan.tokens.get(fp) as { secret: Secret }).secret] as [string, Secret]);
      for (const o of await inspectTokens(ctx, list)) if (!o.ok) log.warn({ fingerprint: o.fingerprint, err: o.error }, 'could not check a new token');
    }
    const healed = await healRetired(ctx, scan, remembered);
    if (healed.some((h) => !h.ok)) void notify('MCP token not healed', 'A config holds a retired Certorix token; see the daemon log.');
    if (healed.some((h) => h.ok)) {
      // Record what we wrote so the watcher's echo of our own write is ignored.
      const again = await findTokens(ctx);
      recordScan(ctx, again);
      for (const c of again.configs) if (c.snapshot) lastHash.set(c.candidate.path, contentHash(c.snapshot.bytes));
    }
    refreshWatch();
  };

  const checkAges = async (reason: string) => {
    await recoverIfNeeded(ctx);
    const now = ctx.now();
    for (const t of buildStatus(ctx)) {
      const row = ctx.store.getToken(t.fingerprint);
      if (!row) continue;
      const n = noticeFor(row, now, ctx.settings.warnAfterDays, ctx.settings.headsUpDays);
      if (!n) continue;
      const where = t.locations.map((l) => l.path);
      const command = `mcp-token-rotator rotate --fingerprint ${t.fingerprint}`;
      if (n.kind === 'warn') {
        log.warn({ fingerprint: t.fingerprint, ageDays: n.ageDays, warnAfterDays: ctx.settings.warnAfterDays, files: where, command, reason }, `token ${t.fingerprint} is ${n.ageDays} days old (>= ${ctx.settings.warnAfterDays}); rotate it: ${command}`);
        if (ctx.settings.notify) void notify('Certorix token due for rotation', `Token ${t.fingerprint} is ${n.ageDays} days old. Run: ${command}`);
      } else {
        log.info({ fingerprint: t.fingerprint, ageDays: n.ageDays, dueInDays: n.dueInDays, command }, `token ${t.fingerprint} is due for rotation in ${n.dueInDays} day(s)`);
      }
      ctx.store.markWarned(t.fingerprint, n.kind, now.toISOString());
    }
  };

  // ---- start-up
  await recoverIfNeeded(ctx, { wait: true });
  await rescan('start');

  const handle = async (req: Request): Promise<unknown> => {
    if (stopping) throw new RotatorError('E_DAEMON_RUNNING', 'The daemon is shutting down.', { hint: 'Run the command again in a moment.' });
    switch (req.method) {
      case 'ping':
        return { pid: process.pid };
      case 'rotate':
        return enqueue(async () => {
          const res = await rotateOp(ctx, { ...req.params, source: 'manual' });
          logRotations(res.rotations);
          await rescan('after rotate');
          return res;
        });
      case 'revoke-now':
        return enqueue(async () => {
          const res = await revokeNowOp(ctx);
          logRotations(res.rotations);
          await rescan('after revoke-now');
          return res;
        });
      case 'broker-token':
        // Not queued behind a rotation: a wrapper asks right after `stored`, while the rest runs.
        return (await import('../broker/serve-token.js')).brokerToken(ctx, req.params.slot);
      case 'set-token':
        return enqueue(async () => {
          const res = await setTokenOp(ctx, new Secret(req.params.token), req.params.fingerprint);
          logRotations(res.rotations);
          await rescan('after set-token');
          return res;
        });
    }
  };
  const logRotations = (rs: Array<{ fingerprint: string; newFingerprint: string | null; status: string; files: Array<{ path: string }>; error?: { message: string } }>) => {
    for (const r of rs) {
      if (r.status === 'rotated') log.info({ fingerprint: r.fingerprint, newFingerprint: r.newFingerprint, files: r.files.map((f) => f.path) }, `rotated token ${r.fingerprint} -> ${r.newFingerprint}`);
      else log.error({ fingerprint: r.fingerprint, status: r.status, err: r.error?.message }, `rotation of token ${r.fingerprint} did not finish`);
    }
  };

  const { startControlServer } = await import('../ipc/server.js');
  const server = await startControlServer(ctx.paths.socket, handle);

  const { planWatch, startWatcher } = await import('./watcher.js');
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
      if (stopping) return;
      void enqueue(() => rescan('watch', paths)).catch((e: unknown) => log.error({ err: (e as Error).message }, 'rescan failed'));
    },
    { debounceMs: opts.debounceMs ?? 300 },
  );
  refreshWatch = () => watcher.update(currentPlan());

  const { startScheduler } = await import('./scheduler.js');
  const scheduler = startScheduler({
    tickMs: opts.tickMs ?? 60_000,
    checkEveryMs: opts.checkEveryMs ?? 3_600_000,
    onCheck: (reason) => {
      if (reason === 'wake') log.info('the wall clock jumped (sleep/wake); checking now');
      void enqueue(() => checkAges(reason)).catch((e: unknown) => log.error({ err: (e as Error).message }, 'age check failed'));
    },
  });

  let cronTask: { stop(): void } | undefined;
  const auto = ctx.settings.autoRotate;
  if (auto) {
    const cron = await import('node-cron');
    const dueNow = () =>
      buildStatus(ctx).filter((t) => {
        const row = ctx.store.getToken(t.fingerprint);
        return row !== null && shouldAutoRotate(row, ctx.now(), auto.afterDays);
      });
    let autoPending = false;
    cronTask = cron.schedule(auto.cron, () => {
      // One scheduled run at a time: a fast cron must not queue the same token twice.
      if (autoPending || stopping || !dueNow().length) return;
      autoPending = true;
      // A small random delay, so many laptops on the same schedule do not call at once.
      const delay = auto.jitterSeconds > 0 ? randomInt(auto.jitterSeconds * 1000) : 0;
      setTimeout(() => {
        if (stopping) {
          autoPending = false;
          return;
        }
        void enqueue(async () => {
          const due = dueNow(); // again: a manual rotation may have happened meanwhile
          if (!due.length) return;
          log.info({ fingerprints: due.map((t) => t.fingerprint), delayMs: delay }, 'scheduled rotation of due token(s)');
          const res = await rotateOp(ctx, { fingerprints: due.map((t) => t.fingerprint), source: 'schedule' });
          logRotations(res.rotations);
          if (res.rotations.some((r) => r.status !== 'rotated')) {
            void notify('Scheduled token rotation failed', 'See the daemon log; it is retried at the next scheduled time.');
          }
          await rescan('after scheduled rotation');
        })
          .catch((e: unknown) => log.error({ err: (e as Error).message }, 'scheduled rotation failed; retrying at the next scheduled time'))
          .finally(() => {
            autoPending = false;
          });
      }, delay).unref();
    });
    log.info({ cron: auto.cron, afterDays: auto.afterDays }, 'scheduled rotation is on');
  }

  log.info({ tokens: buildStatus(ctx).length, configs: ctx.store.listConfigs().length, stateDir: ctx.paths.dir, socket: ctx.paths.socket }, 'daemon started');

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = async (reason: string) => {
    if (stopping) return done;
    stopping = true;
    log.info({ reason }, 'daemon stopping');
    scheduler.stop();
    cronTask?.stop();
    await watcher.close().catch(() => undefined);
    await server.close().catch(() => undefined);
    // Let a rotation in progress finish its step; the journal parks anything longer.
    await Promise.race([queue, new Promise((r) => setTimeout(r, 5000).unref())]);
    await ctx.close();
    daemonLock.release();
    log.info('daemon stopped');
    resolveDone();
    return done;
  };
  return { stop, done };
}

function contentHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
