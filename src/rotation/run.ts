import { randomBytes, randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { clientById } from '../clients/catalog.js';
import { isGoneError, readConfigFile, type ConfigSnapshot, type ScannedConfig } from '../clients/discover.js';
import { locateTokens, type FileFormat } from '../clients/formats.js';
import { EditError, replaceToken } from '../clients/edit.js';
import { checkWritable, ConcurrentChangeError, fsyncDir, removeStaleTemps, writeFileAtomic } from '../clients/write.js';
import { ApiError, ConfigFileError, RotatorError, setTokenHint } from '../errors.js';
import { withRetry } from '../api/retry.js';
import { Secret } from '../secret.js';
import { findTokens, recordScan, type FoundToken, type ScanResult } from '../scan.js';
import type { EventSource } from '../store/store.js';
import type { JournalFile, JournalRow } from '../store/journal.js';
import { nextAction, transition, type MachineState } from './machine.js';
import { backupConfig } from './backup.js';
import { runHooks, type HookResult } from './hooks.js';
import { FileLock } from '../lock.js';
import { failpoint } from './failpoints.js';
import { markPreflight } from './preflight-marker.js';

export interface FilePlan {
  path: string;
  client: string;
  format: FileFormat;
  snapshot: ConfigSnapshot;
  template: PlannedTemplate;
}

/**
 * The new content, planned and verified before the call with a placeholder in place of the
 * token. After the call only the substitution remains, which keeps the window in which
 * clients hold a dead token close to the cost of the writes themselves.
 */
export interface PlannedTemplate {
  text: string;
  placeholder: string;
  count: number;
}

/**
 * A token of these characters reads back the same in every format's literal the placeholder
 * sat in (no escaping in JSON, TOML, YAML, shell; long enough that YAML cannot take it for
 * a boolean or null; starts with a letter so it is never a number).
 */
const PLAIN_TOKEN = /^[A-Za-z][A-Za-z0-9_]{15,}$/;

export function fillTemplate(t: PlannedTemplate, token: string): string | null {
  if (!PLAIN_TOKEN.test(token)) return null;
  const parts = t.text.split(t.placeholder);
  if (parts.length !== t.count + 1) return null;
  return parts.join(token);
}

export interface RotationPlan {
  fingerprint: string;
  secret: Secret;
  files: FilePlan[];
}

export interface RotationResult {
  fingerprint: string;
  newFingerprint: string | null;
  status: 'rotated' | 'planned' | 'failed' | 'pending';
  files: Array<{ path: string; client: string }>;
  restart: string[];
  error?: RotatorError;
  hooks?: HookResult[];
}

/** What a successful preflight would write with, so planning is tested without a real token. */
function placeholderToken(): string {
  return 'ctxPLACEHOLDER' + randomBytes(30).toString('hex');
}

/**
 * Preflight (contract guarantee 1): every config holding the token is read, parsed, checked
 * writable, and its new content planned, before anything is called. Throws naming the file.
 */
export async function planRotation(scan: ScanResult, fp: string): Promise<RotationPlan> {
  const found = scan.tokens.get(fp);
  if (!found) {
    throw new RotatorError('E_TOKEN_UNKNOWN', `No config holds token ${fp}.`, {
      hint: 'Run "mcp-token-rotator status" to see the tracked fingerprints, or "mcp-token-rotator scan" after adding the token to a config.',
    });
  }
  const paths = [...new Set(found.sites.map((s) => s.path))];
  const byPath = new Map(scan.configs.map((c) => [c.candidate.path, c] as const));
  const problems: ConfigFileError[] = [];
  // A config we cannot parse but that contains the token's text would be left holding a dead token.
  for (const c of scan.configs) {
    if (c.status === 'error' && c.snapshot && c.snapshot.text.includes(found.secret.reveal())) {
      problems.push(
        new ConfigFileError('E_CONFIG_PARSE', c.candidate.path, `${c.candidate.path} holds token ${fp} but cannot be parsed: ${c.error?.message ?? ''}`, 'Fix its syntax, then run the command again; nothing was changed.'),
      );
    }
  }
  const files: FilePlan[] = [];
  await Promise.all(
    paths.map(async (p) => {
      const c = byPath.get(p) as ScannedConfig;
      const snap = c.snapshot as ConfigSnapshot;
      try {
        const placeholder = placeholderToken();
        const planned = replaceToken(snap.text, c.candidate.format, found.secret.reveal(), placeholder);
        const left = planned.text.indexOf(found.secret.reveal());
        if (left >= 0) {
          // A copy this tool does not know how to rewrite (an unusual shell line, another key, a
          // comment) would keep the dead token after the rotation.
          const line = planned.text.slice(0, left).split('\n').length;
          throw new ConfigFileError('E_CONFIG_PARSE', p, `${p} holds token ${fp} on line ${line} in a place this tool cannot rewrite safely.`, `Edit line ${line} by hand (use the CERTORIX_API_TOKEN forms in the README, or remove that copy), then run the command again; nothing was changed.`);
        }
        await checkWritable(p, snap.realPath, { data: Buffer.from(planned.text, 'utf8'), mode: snap.stat.mode });
        files.push({ path: p, client: c.candidate.client, format: c.candidate.format, snapshot: snap, template: { text: planned.text, placeholder, count: planned.replaced } });
      } catch (e) {
        problems.push(
          e instanceof ConfigFileError
            ? e
            : new ConfigFileError('E_CONFIG_PARSE', p, `Cannot plan the rewrite of ${p}: ${(e as Error).message}`, 'Check the file; nothing was changed.', e),
        );
      }
    }),
  );
  if (problems.length) {
    const first = problems[0] as ConfigFileError;
    const more = problems.length > 1 ? `\n${problems.slice(1).map((p) => `  also: ${p.message}`).join('\n')}` : '';
    throw new ConfigFileError(first.code as 'E_CONFIG_UNWRITABLE', first.file ?? '', `Preflight failed for token ${fp}, nothing was called or written: ${first.message}${more}`, first.hint ?? 'Fix the file and run the command again.', first);
  }
  files.sort((a, b) => a.path.localeCompare(b.path));
  return { fingerprint: fp, secret: found.secret, files };
}

export interface RotateOptions {
  source: EventSource;
  dryRun?: boolean;
  /** set-token: the replacement is already known; no regenerate call. */
  adopt?: Secret;
}

/** Rotates the given tokens, each on its own: one token's failure never blocks another's. */
export async function rotateTokens(ctx: Context, fps: string[], opts: RotateOptions): Promise<RotationResult[]> {
  const lock = new FileLock(ctx.paths.lock);
  if (!opts.dryRun) await lock.acquire({ timeoutMs: 30_000, what: 'rotating tokens' });
  try {
    const scan = await findTokens(ctx);
    if (!opts.dryRun) recordScan(ctx, scan);
    const results: RotationResult[] = [];
    // Preflight all first: a broken config shows up before any token is touched.
    const plans = new Map<string, RotationPlan | RotatorError>();
    // Preflight leaves probe files in config directories for a moment; a marker lets the next
    // command clean them up if this process dies meanwhile (there is no journal row yet).
    const marker = await markPreflight(ctx.paths.dir, scan.configs.flatMap((c) => (c.snapshot ? [c.snapshot.realPath] : [])));
    try {
      for (const fp of fps) {
        try {
          plans.set(fp, await planRotation(scan, fp));
        } catch (e) {
          plans.set(fp, e instanceof RotatorError ? e : new RotatorError('E_ROTATION', (e as Error).message));
        }
      }
    } finally {
      await unlink(marker).catch(() => undefined);
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
      // One transaction for set-token: a crash must never leave an adoption looking like a regenerate intent.
      const id = ctx.store.transaction(() => {
        const rid = ctx.journal.begin({
          oldFingerprint: fp,
          provider: 'certorix',
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
      results.push(await executeRotation(ctx, id, { plan, scan }));
    }
    return results;
  } finally {
    lock.release();
  }
}

interface ExecuteOptions {
  plan?: RotationPlan;
  scan?: ScanResult;
}

/**
 * Drives one journal row to its end, or as far as it can get: each step's outcome is
 * committed before the next step starts, so a crash anywhere resumes from the journal.
 */
export async function executeRotation(ctx: Context, id: number, opts: ExecuteOptions = {}): Promise<RotationResult> {
  const log = ctx.log.child({ rotation: id });
  let row = ctx.journal.get(id) as JournalRow;
  const oldSecret = row.oldToken ? new Secret(row.oldToken) : null;
  const result: RotationResult = { fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, status: 'pending', files: row.files.map(({ path, client }) => ({ path, client })), restart: [] };
  const snapshots = new Map((opts.plan?.files ?? []).map((f) => [f.path, f]));
  let rediscovered = !!opts.plan;
  // Every token in the configs: blanked from backups so a backup never holds a live one.
  let liveTokens: Map<string, FoundToken> | undefined = opts.scan?.tokens;
  if (!opts.plan) {
    // Resuming after a crash: a write that was in flight left its temp file behind.
    for (const f of row.files) {
      const real = await readConfigFile(f.path).then((s) => s.realPath, () => f.path);
      for (const t of await removeStaleTemps(real)) log.info({ file: t }, 'removed a temp file left by an interrupted write');
    }
  }

  for (let guard = 0; guard < 20; guard++) {
    const state: MachineState = { step: row.step, files: row.files, hasNewToken: !!row.newToken };
    const action = nextAction(state);
    if (action.type === 'none') break;

    if (action.type === 'regenerate') {
      if (!oldSecret) {
        ctx.journal.finish(id, 'failed', ctx.nowIso(), 'journal lost the old token');
        result.status = 'failed';
        result.error = new RotatorError('E_ROTATION', `Rotation of token ${row.oldFingerprint} cannot be replayed.`, { hint: setTokenHint(row.oldFingerprint) });
        return result;
      }
      const provider = await ctx.provider();
      try {
        const res = await withRetry(() => provider.regenerate(oldSecret, row.idempotencyKey), ctx.settings.retry, {
          onRetry: (attempt, delayMs, err) => {
            ctx.journal.noteAttempt(id, (err as Error).message, ctx.nowIso());
            log.warn({ fingerprint: row.oldFingerprint, attempt, delayMs, err: (err as Error).message }, 'regenerate failed, retrying with the same Idempotency-Key');
          },
        });
        failpoint('after-regenerate-response');
        // Durable before any config is touched (contract guarantee 2).
        ctx.journal.recordNewToken(id, { token: res.token.reveal(), fingerprint: res.token.fingerprint, tokenId: res.id, createdAt: res.createdAt ?? null, now: ctx.nowIso() });
        failpoint('after-new-token');
        log.info({ fingerprint: row.oldFingerprint, newFingerprint: res.token.fingerprint }, 'token regenerated');
      } catch (e) {
        if (e instanceof ApiError && !e.transient) {
          // Any other refusal may or may not have cost the old token (an unusable minted token
          // did): ask, so status tells the truth.
          let dead = e.kind === 'invalid-token' || e.kind === 'forbidden';
          if (!dead) dead = await provider.inspect(oldSecret).then(() => false, (x: unknown) => x instanceof ApiError && x.kind === 'invalid-token');
          ctx.store.transaction(() => {
            if (dead) ctx.store.setTokenState(row.oldFingerprint, 'invalid');
            ctx.journal.finish(id, 'failed', ctx.nowIso(), e.message);
            ctx.store.addEvent({ at: ctx.nowIso(), type: 'rotation-failed', fingerprint: row.oldFingerprint, newFingerprint: null, source: row.source as EventSource, files: [], detail: e.message });
          });
          ctx.store.checkpoint();
          result.status = 'failed';
          result.error = e.kind === 'invalid-token' || e.kind === 'forbidden'
            ? new RotatorError(e.code, `The API refused token ${row.oldFingerprint} (${e.status ?? e.kind}); no config was changed.`, { hint: setTokenHint(row.oldFingerprint) })
            : e;
          return result;
        }
        ctx.journal.noteAttempt(id, (e as Error).message, ctx.nowIso());
        result.error = new RotatorError('E_API_TRANSIENT', `Regenerating token ${row.oldFingerprint} failed: ${(e as Error).message}`, {
          hint: 'The rotation is journaled; run any command again (e.g. "mcp-token-rotator status") once the API is reachable and it resumes with the same request.',
        });
        return result;
      }
    } else if (action.type === 'write') {
      const newSecret = new Secret(row.newToken as string);
      if (!rediscovered) {
        // Resuming after a crash: a config may have appeared or been restored meanwhile.
        const scan = await findTokens(ctx);
        liveTokens = scan.tokens;
        const holding = scan.tokens.get(row.oldFingerprint);
        const formats = new Map(scan.configs.map((c) => [c.candidate.path, c.candidate.format]));
        const found = [...new Map((holding?.sites ?? []).map((s) => [s.path, { path: s.path, client: s.client, format: formats.get(s.path) ?? 'jsonc' }])).values()];
        const next = transition(state, { type: 'files-discovered', paths: found });
        if (next.files !== row.files) ctx.journal.setFiles(id, next.files, ctx.nowIso());
        rediscovered = true;
        row = ctx.journal.get(id) as JournalRow;
        continue;
      }
      const pending = row.files.filter((f) => !f.written);
      const rewritten: Rewritten[] = [];
      const outcomes = await Promise.all(
        pending.map((f) =>
          rewriteFile(ctx, f, { oldSecret: oldSecret ?? null, oldFingerprint: row.oldFingerprint, newSecret, planned: snapshots.get(f.path)?.snapshot, template: snapshots.get(f.path)?.template }).then(
            (w) => {
              if (w) rewritten.push(w);
              failpoint('after-file-written');
              return null;
            },
            (e: unknown) => ({ file: f, error: e }),
          ),
        ),
      );
      const failed = outcomes.filter((o): o is { file: JournalFile; error: unknown } => o !== null);
      await fsyncDirsOf(rewritten);
      let s = state;
      for (const f of pending) if (!failed.some((x) => x.file === f)) s = transition(s, { type: 'file-written', path: f.path });
      ctx.journal.setFiles(id, s.files, ctx.nowIso());
      failpoint('after-files-recorded');
      const live = [...(liveTokens?.values() ?? [])].map((t) => t.secret.reveal());
      await backupRewritten(ctx, rewritten, [...live, newSecret.reveal()]);
      if (failed.length) {
        const first = failed[0] as { file: JournalFile; error: unknown };
        const msg = first.error instanceof RotatorError ? first.error.message : (first.error as Error).message;
        ctx.journal.noteAttempt(id, msg, ctx.nowIso());
        log.error({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, file: first.file.path, err: msg }, 'could not write a config; the rotation stays journaled');
        result.error = new RotatorError('E_CONFIG_UNWRITABLE', `Token ${row.oldFingerprint} was regenerated (new ${row.newFingerprint}) but ${first.file.path} could not be written: ${msg}`, {
          file: first.file.path,
          hint: `${first.error instanceof RotatorError && first.error.hint ? first.error.hint + ' ' : ''}The new token is journaled; fix the file and run any command (e.g. "mcp-token-rotator status") to finish writing it.`,
        });
        return result;
      }
    } else if (action.type === 'verify') {
      const newSecret = new Secret(row.newToken as string);
      await verifyFiles(row);
      const provider = await ctx.provider();
      try {
        const info = await withRetry(() => provider.inspect(newSecret), ctx.settings.retry);
        ctx.store.transaction(() => {
          ctx.journal.setStep(id, 'verified', ctx.nowIso());
          ctx.store.recordSuccessor(row.oldFingerprint, newSecret.fingerprint, { tokenId: info.id || row.newTokenId, createdAt: info.createdAt ?? row.newCreatedAt }, ctx.nowIso());
          ctx.store.updateTokenInfo(newSecret.fingerprint, { role: info.role, account: info.email ?? null, checkedAt: ctx.nowIso(), state: 'active' });
        });
        failpoint('after-verified');
      } catch (e) {
        if (e instanceof ApiError && !e.transient) {
          // The files hold the token the API gave us (or the user adopted); there is nothing
          // better to put back. Finish, and say plainly that it is not accepted.
          ctx.store.transaction(() => {
            ctx.journal.setStep(id, 'verified', ctx.nowIso(), e.message);
            ctx.store.recordSuccessor(row.oldFingerprint, newSecret.fingerprint, { tokenId: row.newTokenId, createdAt: row.newCreatedAt }, ctx.nowIso());
            ctx.store.setTokenState(newSecret.fingerprint, 'invalid');
          });
          result.error = new RotatorError('E_TOKEN_INVALID', `The new token ${newSecret.fingerprint} is written everywhere but the API rejects it (${e.status ?? e.kind}).`, {
            hint: setTokenHint(newSecret.fingerprint),
          });
        } else {
          ctx.journal.noteAttempt(id, (e as Error).message, ctx.nowIso());
          result.error = new RotatorError('E_API_TRANSIENT', `Token ${newSecret.fingerprint} is written everywhere but could not be checked with the API: ${(e as Error).message}`, {
            hint: 'Run any command again once the API is reachable to finish the rotation.',
          });
          return result;
        }
      }
    } else if (action.type === 'finish') {
      const files = row.files.map((f) => f.path);
      ctx.store.transaction(() => {
        ctx.store.addEvent({
          at: ctx.nowIso(),
          type: row.source === 'set-token' ? 'adopted' : 'rotated',
          fingerprint: row.oldFingerprint,
          newFingerprint: row.newFingerprint,
          source: row.source as EventSource,
          files,
          detail: row.error,
        });
        ctx.journal.finish(id, 'finished', ctx.nowIso());
      });
      failpoint('after-finish');
      // Move the erased rows out of the WAL too, so no token value stays at rest.
      ctx.store.checkpoint();
      log.info({ fingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files, source: row.source }, 'rotation finished');
      result.status = 'rotated';
      result.newFingerprint = row.newFingerprint;
      result.files = row.files.map(({ path, client }) => ({ path, client }));
      result.restart = restartHints(result.files);
      if (ctx.settings.hooks.postRotate.length && row.newFingerprint) {
        result.hooks = await runHooks(ctx.settings.hooks.postRotate, { oldFingerprint: row.oldFingerprint, newFingerprint: row.newFingerprint, files, source: row.source }, ctx.settings.hooks.timeoutMs);
        for (const h of result.hooks) if (!h.ok) log.warn({ hook: h.command, exitCode: h.exitCode, err: h.error }, 'post-rotate hook failed');
      }
    }
    row = ctx.journal.get(id) as JournalRow;
  }
  return result;
}

/** One fsync per directory that received a rename, after all of them (contract guarantee 3). */
export async function fsyncDirsOf(done: Rewritten[]): Promise<void> {
  await Promise.all([...new Set(done.map((d) => path.dirname(d.realPath)))].map((d) => fsyncDir(d).catch(() => undefined)));
}

export interface RewriteInput {
  oldSecret: Secret | null;
  oldFingerprint: string;
  newSecret: Secret;
  planned: ConfigSnapshot | undefined;
  /** Pre-verified content for the planned snapshot; used on the first attempt only. */
  template?: PlannedTemplate | undefined;
}

/**
 * Rewrites one config: re-read (the file may have changed since planning), substitute,
 * write atomically with a compare-before-rename; on a concurrent change, start over from
 * the new content. Idempotent: a file that already holds the new token is left alone.
 */
export interface Rewritten {
  path: string;
  /** Where the bytes went (a symlink's target): its directory is the one to fsync. */
  realPath: string;
  /** The bytes before the rewrite, for the backup taken once every config is durable. */
  before: Buffer;
  oldToken: string;
  format: FileFormat;
}

export async function rewriteFile(ctx: Context, f: JournalFile, r: RewriteInput): Promise<Rewritten | null> {
  const spec = clientById(f.client);
  const format = f.format as FileFormat;
  for (let attempt = 1; ; attempt++) {
    // The planned snapshot saves a read; if the file changed since, the compare-before-rename catches it.
    let snap: ConfigSnapshot;
    try {
      snap = attempt === 1 && r.planned ? r.planned : await readConfigFile(f.path);
    } catch (e) {
      // Deleted (or its link left dangling) since planning: it holds no dead token, nothing to write.
      if (isGoneError(e)) return null;
      throw e;
    }
    let oldToken = r.oldSecret?.reveal();
    if (oldToken === undefined) {
      const located = locateTokens(snap.text, format);
      if (located.errors.length) throw new ConfigFileError('E_CONFIG_PARSE', f.path, `${f.path} no longer parses: ${located.errors[0]}`, 'Fix its syntax; the rotation resumes on the next command.');
      oldToken = located.sites.find((s) => new Secret(s.token).fingerprint === r.oldFingerprint)?.token;
      if (oldToken === undefined) return null;
    }
    let next: { text: string };
    const filled = attempt === 1 && r.planned && r.template && snap === r.planned ? fillTemplate(r.template, r.newSecret.reveal()) : null;
    try {
      next = filled !== null ? { text: filled } : replaceToken(snap.text, format, oldToken, r.newSecret.reveal());
    } catch (e) {
      // Already rewritten (a resumed rotation), or the user removed the token: nothing to do.
      if (e instanceof EditError && e.notFound) return null;
      throw new ConfigFileError('E_CONFIG_PARSE', f.path, `Cannot rewrite ${f.path}: ${(e as Error).message}`, 'Check the file (did its syntax break?); the rotation resumes on the next command.', e);
    }
    try {
      await withClientLock(spec.lockDir, snap.realPath, () =>
        writeFileAtomic(snap.realPath, Buffer.from(next.text, 'utf8'), { mode: snap.stat.mode, uid: snap.stat.uid, gid: snap.stat.gid, expected: snap.bytes, skipDirSync: true }),
      );
      return { path: f.path, realPath: snap.realPath, before: snap.bytes, oldToken, format };
    } catch (e) {
      if (e instanceof ConcurrentChangeError && attempt < 10) {
        ctx.log.info({ file: f.path, attempt }, 'config changed while being rewritten; re-reading and re-planning');
        continue;
      }
      throw e;
    }
  }
}

/**
 * Backups are taken after every config is durable: they are not needed for safety (each
 * rewrite is verified before it is written) and must not lengthen the window in which
 * clients hold a dead token. The old token in them is dead; other live tokens are blanked.
 */
export async function backupRewritten(ctx: Context, done: Rewritten[], live: string[]): Promise<void> {
  for (const d of done) {
    // Every other token the file holds may be live (another account, or one an earlier
    // rotation of this run just wrote, which no scan has seen): blank it where it sits,
    // through its literal, so an escaped form ("a\"b") is caught too.
    let text = d.before.toString('utf8');
    const others = new Set(locateTokens(text, d.format).sites.map((s) => s.token).filter((t) => t !== d.oldToken));
    for (const t of others) {
      try {
        text = replaceToken(text, d.format, t, 'REDACTED-BY-MCP-TOKEN-ROTATOR').text;
      } catch {
        /* left to the plain-text redaction below */
      }
    }
    const redact = [...live, ...others].filter((v) => v !== d.oldToken);
    await backupConfig(ctx.paths.backups, d.path, Buffer.from(text, 'utf8'), { redact, keep: ctx.settings.backupsToKeep, now: ctx.now() }).catch((e: unknown) =>
      ctx.log.warn({ file: d.path, err: (e as Error).message }, 'could not keep a backup'),
    );
  }
}

export async function withClientLock<T>(enabled: boolean, file: string, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const lockfile = await import('proper-lockfile');
  // Same convention as Cline and Roo (proper-lockfile): a "<file>.lock" directory.
  // stale matches proper-lockfile's default that Cline uses; the retries outlast it, so a
  // lock left by a crashed writer (even by us) is taken over once it goes stale.
  const release = await lockfile.lock(file, { realpath: false, stale: 10_000, retries: { retries: 40, minTimeout: 50, maxTimeout: 500 } });
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Read-back (contract guarantee 6): each file holds the new token and not the old one. */
async function verifyFiles(row: JournalRow): Promise<void> {
  for (const f of row.files) {
    let snap: ConfigSnapshot;
    try {
      snap = await readConfigFile(f.path);
    } catch {
      continue; // removed since: nothing of ours to verify
    }
    const res = locateTokens(snap.text, f.format as FileFormat);
    if (res.sites.some((s) => new Secret(s.token).fingerprint === row.oldFingerprint)) {
      throw new RotatorError('E_ROTATION', `${f.path} still holds the old token ${row.oldFingerprint} after the rewrite.`, { file: f.path, hint: 'Run "mcp-token-rotator status" to resume; if it persists, a program is restoring its own copy of the file.' });
    }
  }
}

/** Guarantee 8: which running clients must be restarted, one line per client. */
export function restartHints(files: Array<{ client: string }>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of files) {
    const spec = clientById(f.client);
    if (seen.has(spec.id)) continue;
    seen.add(spec.id);
    out.push(spec.restartHint);
  }
  return out;
}
