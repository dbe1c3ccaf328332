import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { Context } from '../context.js';
import { readConfigFile } from '../clients/discover.js';
import { removeStaleTemps } from '../clients/write.js';
import { RotatorError } from '../errors.js';
import { Secret } from '../secret.js';
import { findTokens, recordScan, type ScanResult } from '../scan.js';
import type { EventSource } from '../store/store.js';
import type { JournalRow } from '../store/journal.js';
import { nextAction, type Action } from './machine.js';
import { providerModule } from '../providers/index.js';
import { FileLock } from '../lock.js';
import { failpoint } from './failpoints.js';
import { markPreflight } from './preflight-marker.js';
import { planRotation, type RotationPlan } from './plan.js';
import { checkAlive, discardWrites, prepareWrites } from './prepare.js';
import type { PreparedWrite } from '../clients/write.js';
import { restartHints, type RotationResult } from './result.js';
import { machineState, type Execution, type StepHandler, type Verdict } from './steps/execution.js';
import { regenerateStep } from './steps/regenerate.js';
import { writeStep } from './steps/write.js';
import { verifyStep } from './steps/verify.js';
import { finishStep } from './steps/finish.js';
import { abandonStep } from './steps/abandon.js';
import { loseStep } from './steps/lose.js';
import { announceStep, storeStep } from './steps/broker.js';
import type { BrokerPort } from './port.js';

export { fillTemplate, planRotation, type FilePlan, type PlannedTemplate, type RotationPlan } from './plan.js';
export { restartHints, type RotationResult } from './result.js';

export interface RotateOptions {
  source: EventSource;
  dryRun?: boolean;
  /** set-token: the replacement is already known; no regenerate call. */
  adopt?: Secret;
  /** Broker mode as the engine needs it (src/rotation/port.ts), from the composition root. */
  broker: BrokerPort;
}

/** Rotates the given tokens, each on its own: one token's failure never blocks another's. */
export async function rotateTokens(ctx: Context, fps: string[], opts: RotateOptions): Promise<RotationResult[]> {
  const lock = new FileLock(ctx.paths.lock);
  if (!opts.dryRun) await lock.acquire({ timeoutMs: 30_000, what: 'rotating tokens' });
  let marker: string | undefined;
  try {
    const scan = await findTokens(ctx).then((s) => opts.broker.withSlotTokens(ctx, s));
    if (!opts.dryRun) recordScan(ctx, scan);
    const results: RotationResult[] = [];
    // Preflight all first: a broken config shows up before any token is touched.
    const plans = new Map<string, RotationPlan | RotatorError>();
    // Preflight leaves probe files in config directories for a moment; a marker lets the next
    // command clean them up if this process dies meanwhile (there is no journal row yet).
    // It stays until the end: the temp files prepared before each call are covered by it
    // until their journal row exists.
    marker = await markPreflight(ctx.paths.dir, scan.configs.flatMap((c) => (c.snapshot ? [c.snapshot.realPath] : [])));
    for (const fp of fps) {
      // A provider with no rotate API (GitHub): refused before anything, with the way out.
      const refusal = opts.adopt ? null : cannotRotate(ctx, fp, scan.tokens.get(fp)?.provider);
      if (refusal) {
        plans.set(fp, refusal);
        continue;
      }
      try {
        plans.set(fp, await planRotation(scan, fp));
      } catch (e) {
        plans.set(fp, e instanceof RotatorError ? e : new RotatorError('E_ROTATION', (e as Error).message));
      }
    }
    for (const fp of fps) {
      const plan = plans.get(fp) as RotationPlan | RotatorError;
      if (plan instanceof RotatorError) {
        results.push({ fingerprint: fp, newFingerprint: null, status: 'failed', files: [], restart: [], error: plan });
        if (!opts.dryRun) ctx.store.addEvent({ at: ctx.nowIso(), type: 'rotation-refused', fingerprint: fp, newFingerprint: null, source: opts.source, files: plan.file ? [plan.file] : [], detail: plan.message });
        continue;
      }
      const files = plan.files.map((f) => ({ path: f.path, client: f.client, format: f.format }));
      if (opts.dryRun) {
        results.push({ fingerprint: fp, newFingerprint: null, status: 'planned', files, restart: restartHints(files) });
        continue;
      }
      const adopt = opts.adopt;
      // Before any mutation: a dead token is reported now, a live one warms the response path.
      const dead = adopt ? null : await checkAlive(ctx, plan, opts.source);
      if (dead) {
        results.push({ fingerprint: fp, newFingerprint: null, status: 'failed', files, restart: [], error: dead });
        continue;
      }
      const prepared = await prepareWrites(ctx, plan);
      ctx.journal.prepareStatements();
      // One transaction for set-token: a crash must never leave an adoption looking like a regenerate intent.
      const id = ctx.store.transaction(() => {
        const known = ctx.store.getToken(fp);
        const rid = ctx.journal.begin({
          oldFingerprint: fp,
          provider: scan.tokens.get(fp)?.provider ?? known?.provider ?? 'certorix',
          apiUrl: scan.tokens.get(fp)?.apiUrl ?? known?.apiUrl ?? null,
          source: opts.source,
          idempotencyKey: randomUUID(),
          oldToken: plan.secret.reveal(),
          files: files.map((f) => ({ ...f, written: false })),
          now: ctx.nowIso(),
        });
        if (adopt) ctx.journal.recordNewToken(rid, { token: adopt.reveal(), fingerprint: adopt.fingerprint, tokenId: '', createdAt: null, now: ctx.nowIso() });
        return rid;
      });
      failpoint('after-intent');
      try {
        results.push(await executeRotation(ctx, id, { plan, scan, prepared, broker: opts.broker }));
      } finally {
        await discardWrites(prepared);
      }
    }
    return results;
  } finally {
    if (marker) await unlink(marker).catch(() => undefined);
    lock.release();
  }
}

/**
 * The refusal for a token whose provider cannot rotate by API (null when it can): exit 2,
 * naming the page where the user makes a new token and `set-token`, which puts it everywhere.
 */
export function cannotRotate(ctx: Context, fp: string, scanned?: string): RotatorError | null {
  const name = scanned ?? ctx.store.getToken(fp)?.provider ?? 'certorix';
  const p = providerModule(name);
  if (!p || p.rotate !== 'none') return null;
  const page = ctx.tokenPageFor(fp);
  return new RotatorError('E_ROTATION', `${p.label} token ${fp} cannot be rotated by this tool: ${p.label} has no API that makes a new personal access token. Nothing was changed.`, {
    hint: `Make a new token at ${page} (and delete the old one there), then pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\`: it checks it with ${p.label} and puts it in every config that holds this one.`,
  });
}

/**
 * The executor's table: one handler per machine action (machine.ts decides which). Each
 * handler journals its outcome before returning, so a crash anywhere resumes from the journal.
 */
const STEPS: { [T in Exclude<Action['type'], 'none'>]: StepHandler<T> } = {
  announce: announceStep,
  store: storeStep,
  regenerate: regenerateStep,
  write: writeStep,
  verify: verifyStep,
  finish: finishStep,
  abandon: abandonStep,
  lose: loseStep,
};

function runStep(ex: Execution, row: JournalRow, action: Exclude<Action, { type: 'none' }>): Promise<Verdict> {
  // A mapped-type lookup loses the link between the key and its handler's action type.
  return (STEPS[action.type] as StepHandler<typeof action.type>)(ex, row, action as never);
}

interface ExecuteOptions {
  broker: BrokerPort;
  plan?: RotationPlan;
  scan?: ScanResult;
  /** Temp files opened before the call, by config path (fresh rotations only). */
  prepared?: Map<string, PreparedWrite>;
}

/** Drives one journal row to its end, or as far as it can get. */
export async function executeRotation(ctx: Context, id: number, opts: ExecuteOptions): Promise<RotationResult> {
  let row = ctx.journal.get(id) as JournalRow;
  const ex: Execution = {
    ctx,
    id,
    log: ctx.log.child({ rotation: id }),
    oldSecret: row.oldToken ? new Secret(row.oldToken) : null,
    result: { fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, status: 'pending', files: row.files.map(({ path, client }) => ({ path, client })), restart: [] },
    snapshots: new Map((opts.plan?.files ?? []).map((f) => [f.path, f])),
    rediscovered: !!opts.plan,
    liveTokens: opts.scan?.tokens,
    prepared: opts.prepared ?? new Map(),
    broker: null,
    brokerPort: opts.broker,
  };
  if (!opts.plan) {
    // Resuming after a crash: a write that was in flight left its temp file behind.
    for (const f of row.files) {
      const real = await readConfigFile(f.path).then((s) => s.realPath, () => f.path);
      for (const t of await removeStaleTemps(real)) ex.log.info({ file: t }, 'removed a temp file left by an interrupted write');
    }
  }
  if (row.step === 'intent' || row.step === 'regenerated') {
    ex.broker = await opts.broker.startRun(ctx, row, ex.log);
  }
  try {
    for (let guard = 0; guard < 20; guard++) {
      const action = nextAction(machineState(row, ex.broker));
      if (action.type === 'none') break;
      if ((await runStep(ex, row, action)) === 'stop') return ex.result;
      row = ctx.journal.get(id) as JournalRow;
    }
    return ex.result;
  } finally {
    // Announced but no new token stored (refused, failed, crashed step): wrappers stop holding.
    if (ex.broker?.announced && !ex.broker.stored) await ex.broker.signal.aborted();
    ex.broker?.store.close?.();
  }
}
