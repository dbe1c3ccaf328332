import { randomInt } from 'node:crypto';
import { shouldAutoRotate } from '../rotation/policy.js';
import { logRotations, type DaemonCore, type DaemonService } from './core.js';

/**
 * Opt-in scheduled rotation (settings `autoRotate`): at the cron times, after a random
 * delay, rotates the due tokens through the daemon's queue. SIGHUP re-reads the schedule.
 */
export async function startAutoRotate(core: DaemonCore): Promise<DaemonService> {
  const { ctx, log } = core;
  let task: { stop(): void } | undefined;

  const start = async () => {
    const auto = ctx.settings.autoRotate;
    if (!auto) return;
    // Loaded only when scheduled rotation is on: an idle daemon stays small.
    const cron = await import('node-cron');
    const { buildStatus } = await import('../status.js');
    const { rotateOp } = await import('../operations.js');
    const dueNow = () =>
      buildStatus(ctx).filter((t) => {
        const row = ctx.store.getToken(t.fingerprint);
        // Only providers that can rotate by API; the others get the daemon's warnings with their page.
        return row !== null && ctx.providerOfToken(t.fingerprint).rotate !== 'none' && shouldAutoRotate(row, ctx.now(), auto.afterDays, ctx.settings.warnBeforeExpiryDays);
      });
    let pending = false;
    task = cron.schedule(auto.cron, () => {
      // One scheduled run at a time: a fast cron must not queue the same token twice.
      if (pending || core.stopping || !dueNow().length) return;
      pending = true;
      // A small random delay, so many laptops on the same schedule do not call at once.
      const delay = auto.jitterSeconds > 0 ? randomInt(auto.jitterSeconds * 1000) : 0;
      setTimeout(() => {
        if (core.stopping) {
          pending = false;
          return;
        }
        void core
          .enqueue(async () => {
            const due = dueNow(); // again: a manual rotation may have happened meanwhile
            if (!due.length) return;
            log.info({ fingerprints: due.map((t) => t.fingerprint), delayMs: delay }, 'scheduled rotation of due token(s)');
            const res = await rotateOp(ctx, { fingerprints: due.map((t) => t.fingerprint), source: 'schedule' });
            logRotations(log, res.rotations);
            if (res.rotations.some((r) => r.status !== 'rotated')) core.notify('Scheduled token rotation failed', 'See the daemon log; it is retried at the next scheduled time.');
            await core.rescan('after scheduled rotation');
          })
          .catch((e: unknown) => log.error({ err: (e as Error).message }, 'scheduled rotation failed; retrying at the next scheduled time'))
          .finally(() => {
            pending = false;
          });
      }, delay).unref();
    });
    log.info({ cron: auto.cron, afterDays: auto.afterDays }, 'scheduled rotation is on');
  };
  const stop = () => {
    task?.stop();
    task = undefined;
  };
  await start();
  return {
    name: 'auto-rotate',
    stop,
    async reload() {
      stop();
      await start();
    },
  };
}
