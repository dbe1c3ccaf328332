import type { Context } from '../context.js';
import { RotatorError, SettingsError } from '../errors.js';
import { FileLock } from '../lock.js';
import { DEFAULT_CHECK_TIMES, type CheckTimes, type Trigger } from './checks.js';
import { createQueue, logRotations, type DaemonCore, type DaemonService, type StartStep } from './core.js';
import { createDispatcher, HANDLERS, type Handlers } from './dispatch.js';
import { createNotifier } from './notify.js';
import { createRescanner } from './rescan.js';
import { createTokenChecks } from './token-checks.js';
import { brokerPort } from '../broker/rotation-port.js';
import type { MemoryTrim } from '../process/memory-trim.js';

export interface DaemonOptions {
  /** How often the scheduler ticks (wake detection and due checks). */
  tickMs?: number;
  /** Token check intervals (ages, daily verification, backoff); see checks.ts. */
  times?: Partial<CheckTimes>;
  debounceMs?: number;
  /** More start-up steps, run after the built-in ones (e.g. a local HTTP endpoint). */
  extraSteps?: StartStep[];
  /** Control socket methods added by a feature (or replacing built-in ones). */
  handlers?: Partial<Handlers>;
}

export interface RunningDaemon {
  stop(reason: string): Promise<void>;
  /** SIGHUP: reload the settings, rescan, re-check every token now. */
  reload(): Promise<void>;
  done: Promise<void>;
}

/** The control socket. */
const controlSocket =
  (handlers: Handlers): StartStep =>
  async (core) => {
    const { startControlServer } = await import('../ipc/server.js');
    const server = await startControlServer(core.ctx.paths.socket, createDispatcher(core, handlers));
    return { name: 'control-socket', stop: () => server.close().catch(() => undefined) };
  };

/**
 * The service: broker mode (the local endpoint listens), finish journaled work, scan, then
 * the start-up steps in order (control socket, watcher, token checks, scheduled rotation, then `opts.extraSteps`), each a
 * DaemonService stopped in reverse order and reloaded on SIGHUP. Every mutation runs
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
  const { buildStatus } = await import('../status.js');
  const { limitCoreSize } = await import('../process/core-dumps.js');
  void limitCoreSize().then((ok) => log.debug({ ok }, 'RLIMIT_CORE set to 0 (prlimit)'));

  const times: CheckTimes = { ...DEFAULT_CHECK_TIMES, ...opts.times };
  // Start-up (the first scan, the API checks) and the jobs after it (a rescan, a rotation)
  // leave garbage V8 gives back only once its memory reducer acts, 8-35 s later or not at all
  // after a small burst; the daemon gives it back itself 5 s after the burst
  // (src/process/memory-trim.ts, as the exec wrapper does): 63 -> 59 MiB idle with 62 configs.
  // Started once the daemon is up, so its first trim follows all of start-up.
  let trim: MemoryTrim | null = null;
  const q = createQueue(() => trim?.touch());
  let stopping = false;
  // Set once the watcher runs; a rescan before that has nothing to re-plan.
  let refreshWatch: () => void = () => undefined;
  const notify = createNotifier(() => ctx.settings.notify);
  // Settings `metricsFile`: loaded only when set (SIGHUP may set it later).
  let metricsWriter: Promise<{ write(why: string): Promise<void> }> | undefined;
  const writeMetrics = async (why: string): Promise<void> => {
    if (!ctx.settings.metricsFile) return;
    metricsWriter ??= import('../metrics/file.js').then((m) => m.createMetricsWriter(ctx, log));
    await (await metricsWriter).write(why);
  };
  const check = (trigger: Trigger) =>
    q
      .enqueue(async () => {
        const plan = await checks.run(trigger);
        if (plan.ages || plan.verify !== 'none') await writeMetrics(`check (${trigger})`);
      })
      .catch((e: unknown) => log.error({ err: (e as Error).message, trigger }, 'token check failed'));
  const rescanner = createRescanner({ ctx, log, notify, refreshWatch: () => refreshWatch(), check: (t) => void check(t) });
  // Every rotation, heal and adoption ends in a rescan: the metrics follow it.
  const rescan: DaemonCore['rescan'] = async (why, changed, o) => {
    await rescanner.rescan(why, changed, o);
    await writeMetrics(why);
  };
  const core: DaemonCore = {
    ctx,
    log,
    get stopping() {
      return stopping;
    },
    enqueue: q.enqueue,
    idle: q.idle,
    notify,
    rescan,
    liveTokens: rescanner.liveTokens,
    check,
    mutate: (why, fn) =>
      q.enqueue(async () => {
        const res = await fn();
        logRotations(log, res.rotations);
        await rescan(why);
        return res;
      }),
  };
  const checks = createTokenChecks(core, times);

  // ---- start-up
  // Broker mode first, before crash recovery: the local endpoint listens again at once (its
  // clients were refused while the daemon was down; a recovery's rotation holds their calls
  // instead), and a port taken while the daemon was down is moved off before anything else.
  const services: DaemonService[] = [];
  const broker: StartStep = async (c) => (await import('../broker/endpoint/index.js')).brokerStep(c);
  const brokerService = await broker(core);
  if (brokerService) services.push(brokerService);
  try {
    await recoverIfNeeded(ctx, { wait: true, broker: brokerPort });
    await rescanner.rescan('start', undefined, { askNew: false });
  } catch (e) {
    await Promise.resolve(brokerService?.stop()).catch(() => undefined);
    throw e;
  }

  const watch: StartStep = async (c) => {
    const { startConfigWatcher } = await import('./watcher.js');
    const w = await startConfigWatcher(c, opts.debounceMs ?? 300);
    refreshWatch = w.refresh;
    return { name: 'watcher', stop: w.close, reload: w.refresh };
  };
  const tokenChecks: StartStep = async (c) => {
    const { startScheduler } = await import('./scheduler.js');
    void c.check('start');
    const s = startScheduler({ tickMs: opts.tickMs ?? 60_000, onTick: (t) => void c.check(t) });
    return { name: 'token-checks', stop: () => s.stop() };
  };
  const autoRotate: StartStep = async (c) => (await import('./autorotate.js')).startAutoRotate(c);

  const steps: StartStep[] = [controlSocket({ ...HANDLERS, ...opts.handlers } as Handlers), watch, tokenChecks, autoRotate, ...(opts.extraSteps ?? [])];
  for (const step of steps) {
    const s = await step(core);
    if (s) services.push(s);
  }

  log.info({ tokens: buildStatus(ctx).length, configs: ctx.store.listConfigs().length, stateDir: ctx.paths.dir, socket: ctx.paths.socket }, 'daemon started');
  const { startMemoryTrim, trimOptionsFromEnv } = await import('../process/memory-trim.js');
  // After start-up, a job counts once the heap grew 2 MiB since the last trim: a rotation or a
  // rescan does, the minute's check that finds nothing due does not (no trim, no CPU for it).
  trim = startMemoryTrim({ minGrowthBytes: 2 * 1024 * 1024, ...trimOptionsFromEnv() });
  await writeMetrics('start');
  if (buildStatus(ctx).length === 0) {
    const advice = (await import('./first-run.js')).noTokenAdvice(ctx.pathEnv, ctx.settings);
    log.info({ looked: advice.looked }, advice.msg);
  }

  const reload = () =>
    q.enqueue(async () => {
      if (stopping) return;
      log.info({ settings: ctx.settingsFile }, 'SIGHUP: reloading the settings, rescanning, re-checking every token');
      try {
        await ctx.reloadSettings();
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        log.error({ file: e instanceof SettingsError ? e.file : ctx.settingsFile, err: msg }, 'the settings file is not valid; keeping the settings in force');
      }
      for (const s of services) await Promise.resolve(s.reload?.()).catch((e: unknown) => log.error({ service: s.name, err: (e as Error).message }, 'reload failed'));
      await rescanner.rescan('reload', undefined, { askNew: false });
      void check('reload');
    });

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = async (reason: string) => {
    if (stopping) return done;
    stopping = true;
    log.info({ reason }, 'daemon stopping');
    trim?.stop();
    for (const s of [...services].reverse()) await Promise.resolve(s.stop()).catch(() => undefined);
    // Let a rotation in progress finish its step; the journal parks anything longer.
    await Promise.race([q.idle(), new Promise((r) => setTimeout(r, 5000).unref())]);
    await ctx.close();
    daemonLock.release();
    log.info('daemon stopped');
    resolveDone();
    return done;
  };
  return { stop, reload, done };
}
