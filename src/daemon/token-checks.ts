import { factsUnknown, noticeFor } from '../rotation/policy.js';
import type { Secret } from '../secret.js';
import { afterChecks, initialClock, planChecks, type CheckClock, type CheckPlan, type CheckTimes, type Trigger, type Verify } from './checks.js';
import type { DaemonCore } from './core.js';
import { brokerPort } from '../broker/rotation-port.js';

/**
 * The daemon's token looks (I/O around checks.ts): asks the API about tokens (GET
 * /v1/token), so a token killed elsewhere becomes `invalid` and an unknown age becomes
 * known; then warns about ages. Runs in the daemon's queue.
 */
export function createTokenChecks(core: DaemonCore, times: CheckTimes): { run(trigger: Trigger): Promise<CheckPlan> } {
  const { ctx, log } = core;
  let clock: CheckClock = initialClock(ctx.now().getTime());

  const unknownNow = (): Array<[string, Secret]> =>
    [...core.liveTokens()].filter(([fp]) => {
      const row = ctx.store.getToken(fp);
      return row !== null && factsUnknown(row, ctx.providerOfToken(fp).tellsCreationDate);
    });

  /** Returns whether the API answered (for the backoff). */
  const verify = async (which: Exclude<Verify, 'none'>, trigger: Trigger): Promise<'answered' | 'unreachable'> => {
    const { inspectTokens } = await import('../scan.js');
    const list = which === 'all' ? [...core.liveTokens()].filter(([fp]) => ctx.store.getToken(fp)?.state !== 'retired') : unknownNow();
    if (!list.length) return 'answered';
    const outcomes = await inspectTokens(ctx, list);
    let unreachable = 0;
    for (const o of outcomes) {
      if (o.kind === 'invalid') {
        const p = ctx.providerOfToken(o.fingerprint);
        const fix = `regenerate it in ${ctx.tokenPageFor(o.fingerprint)}, then pipe the new token to "mcp-token-rotator set-token --fingerprint ${o.fingerprint}"`;
        // A fresh refusal, or a known one at start / SIGHUP (the user is looking now).
        if (!o.wasInvalid || trigger === 'start' || trigger === 'reload') {
          const files = ctx.store.listLocations(o.fingerprint).map((l) => l.path);
          log.warn({ fingerprint: o.fingerprint, provider: p.name, files, command: `mcp-token-rotator set-token --fingerprint ${o.fingerprint}` }, `${p.label} token ${o.fingerprint} is invalid, expired or revoked (the API answered 401); the clients using it are broken: ${fix}`);
        }
        if (!o.wasInvalid) core.notify(`${p.label} token invalid`, `${p.label} token ${o.fingerprint} was refused by the API (revoked, expired or regenerated elsewhere). Make a new one, then run: mcp-token-rotator set-token --fingerprint ${o.fingerprint}`);
      } else if (o.kind === 'unreachable') unreachable++;
      else if (o.kind === 'error') log.warn({ fingerprint: o.fingerprint, err: o.error }, `could not check token ${o.fingerprint}`);
    }
    if (unreachable) {
      const unknown = unknownNow().map(([fp]) => fp);
      const first = clock.failures === 0;
      const err = outcomes.find((o) => o.kind === 'unreachable')?.error;
      // Loud once per outage, quiet while it lasts.
      (first ? log.warn.bind(log) : log.info.bind(log))({ tokens: unreachable, unknownAge: unknown, err, trigger }, `could not reach the API to check ${unreachable} token(s); asking again later (with backoff)`);
      return 'unreachable';
    }
    log.info({ tokens: outcomes.length, which, trigger }, `checked ${outcomes.length} token(s) with the API`);
    return 'answered';
  };

  const checkAges = async (reason: Trigger) => {
    const { recoverIfNeeded } = await import('../rotation/recover.js');
    const { buildStatus } = await import('../status.js');
    await recoverIfNeeded(ctx, { broker: brokerPort });
    const now = ctx.now();
    const warnAfterDays = ctx.settings.warnAfterDays;
    for (const t of buildStatus(ctx)) {
      const row = ctx.store.getToken(t.fingerprint);
      if (!row) continue;
      const n = noticeFor(row, now, warnAfterDays, ctx.settings.headsUpDays, ctx.settings.warnBeforeExpiryDays);
      if (!n) continue;
      const where = t.locations.map((l) => l.path);
      const p = ctx.providerOfToken(t.fingerprint);
      // A provider that cannot rotate: the user makes a new token and set-token puts it everywhere.
      const command = p.rotate === 'none' ? `mcp-token-rotator set-token --fingerprint ${t.fingerprint}` : `mcp-token-rotator rotate --fingerprint ${t.fingerprint}`;
      const todo = p.rotate === 'none' ? `make a new one at ${ctx.tokenPageFor(t.fingerprint)} and pipe it to: ${command}` : `rotate it: ${command}`;
      const age = n.ageDays === null ? `at least ${n.minAgeDays} days old (first seen then; its creation date is not known yet)` : `${n.ageDays} days old`;
      if (n.kind === 'warn' && n.reason === 'expiry') {
        const when = (n.expiresInDays ?? 0) < 0 ? `expired on ${row.expiresAt ?? '?'}` : `expires in ${n.expiresInDays} day(s) (${row.expiresAt ?? '?'})`;
        log.warn({ fingerprint: t.fingerprint, provider: p.name, expiresAt: row.expiresAt, expiresInDays: n.expiresInDays, warnBeforeExpiryDays: ctx.settings.warnBeforeExpiryDays, files: where, command, reason }, `${p.label} token ${t.fingerprint} ${when}; ${todo}`);
        core.notify(`${p.label} token expiring`, `${p.label} token ${t.fingerprint} ${when}. ${todo}`);
      } else if (n.kind === 'warn') {
        const label = p.name === 'certorix' ? 'token' : `${p.label} token`;
        log.warn({ fingerprint: t.fingerprint, provider: p.name, ageDays: n.ageDays, minAgeDays: n.minAgeDays, warnAfterDays, files: where, command, reason }, `${label} ${t.fingerprint} is ${age} (>= ${warnAfterDays}); ${todo}`);
        core.notify(`${p.label} token due for rotation`, `Token ${t.fingerprint} is ${age}. Run: ${command}`);
      } else {
        log.info({ fingerprint: t.fingerprint, ageDays: n.ageDays, dueInDays: n.dueInDays, command }, `token ${t.fingerprint} is due for rotation in ${n.dueInDays} day(s)`);
      }
      ctx.store.markWarned(t.fingerprint, n.kind, now.toISOString());
    }
  };

  return {
    async run(trigger) {
      const now = ctx.now().getTime();
      const plan = planChecks(clock, now, trigger, unknownNow().length > 0);
      let result: 'answered' | 'unreachable' = 'answered';
      if (trigger === 'wake') log.info('the wall clock jumped (sleep/wake); checking now');
      if (plan.verify !== 'none') {
        result = await verify(plan.verify, trigger);
      }
      clock = afterChecks(clock, now, plan, result, times, Math.random());
      if (plan.ages) await checkAges(trigger);
      return plan;
    },
  };
}
