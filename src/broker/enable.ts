/**
 * `broker enable`: every config entry holding a Certorix token that can run through the
 * broker is converted, with a rotation's guarantees:
 *
 * 1. Preflight: every config is read, parsed, planned (pure, convert/) and checked writable
 *    before anything is written. A config that cannot be is reported and left plaintext;
 *    the others go on (an entry left plaintext is still rotated as before, so a partial
 *    enable is safe, and one broken file does not hold the rest hostage). Exit 2 then.
 * 2. The token goes to the token store and its slot to the registry BEFORE any config is
 *    converted: from then on it lives in the store whatever happens to the files.
 * 3. Per config: the entries' rows (original text with a marker for the token, converted
 *    text) are committed, then the file is replaced atomically (compare-before-rename,
 *    mode/owner kept, symlinks followed, client lock), then read back.
 * 4. A durable "pending" note brackets the writes: a crash anywhere leaves each config old
 *    or new, the token in the store and in any config not yet converted, and the next
 *    broker command reconciles rows whose file never changed (reconcile.ts).
 * The rotation lock is held throughout, so enable never races a rotation.
 */
import type { Context } from '../context.js';
import { keyPathString, readConfigFile, type ConfigSnapshot } from '../clients/discover.js';
import { checkWritable, ConcurrentChangeError, fsyncDir } from '../clients/write.js';
import { ConfigFileError, RotatorError } from '../errors.js';
import { fingerprint } from '../fingerprint.js';
import { FileLock } from '../lock.js';
import { failpoint } from '../rotation/failpoints.js';
import { backupConfig } from '../rotation/backup.js';
import { findTokens, recordScan, type ScanResult } from '../scan.js';
import { Secret } from '../secret.js';
import { BrokerRegistry, newRouteSecret, newSlotName } from './registry.js';
import { brokerSites, planFile, type FileEntryPlan } from './convert/file.js';
import { BIN_NAME, entryPathOf, portableEntry } from './convert/convert.js';
import { gitFacts } from '../doctor/git.js';
import type { KeyPath } from '../clients/formats.js';
import { locateEntry } from './convert/positions.js';
import {
  clearPending,
  endpointFacts,
  liveEndpoint,
  modeOf,
  NO_ENDPOINT_REASON,
  openBrokerStore,
  PORT_META,
  privateMode,
  SERVICE_SILENT_REASON,
  setPending,
  targetFor,
  writeConfig,
  type BrokerEntryRef,
} from './common.js';
import { reconcileBroker } from './reconcile.js';
import { FileTokenStore } from './store.js';
import path from 'node:path';

export interface BrokerEntryReport extends BrokerEntryRef {
  slot?: string;
  reason?: string;
}

export interface BrokerProblem {
  path: string;
  message: string;
  hint?: string;
}

export interface EnableResult {
  dryRun: boolean;
  /** Entries converted now (or, with --dry-run, that would be). */
  converted: BrokerEntryReport[];
  /** Entries that stay plaintext, each with its reason. */
  plaintext: BrokerEntryReport[];
  /** Configs that could not be converted (read, parse, write); left as they were. */
  problems: BrokerProblem[];
  files: string[];
  /** `reason`/`fix`: why the OS keychain is not used (file store), and how to get it. */
  store: { backend: string; where: string; reason?: string; fix?: string };
  notes: string[];
}

interface FileWork {
  snap: ConfigSnapshot;
  client: string;
  format: import('../clients/formats.js').FileFormat;
  entries: FileEntryPlan[];
  text: string;
}

export async function brokerEnable(ctx: Context, opts: { dryRun?: boolean } = {}): Promise<EnableResult> {
  const dryRun = opts.dryRun === true;
  const lock = new FileLock(ctx.paths.lock);
  if (!dryRun) await lock.acquire({ timeoutMs: 30_000, what: 'rotating tokens' });
  try {
    const notes = dryRun ? [] : await reconcileBroker(ctx);
    const scan = await findTokens(ctx);
    if (!dryRun) recordScan(ctx, scan);
    const reg = new BrokerRegistry(ctx.store);
    const store = await openBrokerStore(ctx);
    const fallback = store instanceof FileTokenStore ? store.fallback : undefined;
    const result: EnableResult = { dryRun, converted: [], plaintext: [], problems: [], files: [], store: { backend: store.backend, where: store.where, ...(fallback ? { reason: fallback.reason, fix: fallback.fix } : {}) }, notes };

    // The endpoint: only the running daemon serves it, and no URL is written before its port
    // answers. The daemon listens first (binding the port itself: it is never free between
    // being chosen and being bound). No daemon: remote entries stay plaintext, and say why.
    const ep = await endpointFacts(ctx);
    let port: number | null = null;
    let endpointWhy = ep.service ? SERVICE_SILENT_REASON : NO_ENDPOINT_REASON;
    if (ep.daemon && dryRun) port = ep.port ?? 0;
    else if (ep.daemon) {
      const live = await liveEndpoint(ctx);
      if (live.port !== null) port = live.port;
      else endpointWhy = live.reason;
    }
    const endpointOk = port !== null;
    const slots = new Map<string, string>();
    const slotFor = (fp: string) => {
      let s = slots.get(fp) ?? reg.slotForFingerprint(fp)?.slot;
      if (!s) s = newSlotName(ctx.store.getToken(fp)?.provider);
      slots.set(fp, s);
      return s;
    };

    // 1. Preflight: plan every config.
    const work: FileWork[] = [];
    const portableOf = new Map<string, (ep: KeyPath) => boolean>();
    for (const c of scan.configs) {
      if (!c.sites.length) continue;
      const p = c.candidate.path;
      if (c.status !== 'ok' || !c.snapshot) {
        result.problems.push({ path: p, message: c.error?.message ?? `${p} cannot be read`, ...(c.error?.hint ? { hint: c.error.hint } : {}) });
        continue;
      }
      const snap = c.snapshot;
      // Project-scoped configs (extraConfigs, git-tracked, Claude Code's projects.*) get portable entries.
      const gitTracked = (await gitFacts(snap.realPath, ctx.pathEnv.home).catch(() => ({ state: 'none' as const }))).state === 'tracked';
      const portable = (ep: KeyPath) => portableEntry({ origin: c.candidate.origin, gitTracked, client: c.candidate.client, entryPath: ep });
      portableOf.set(p, portable);
      try {
        // A retired (dead) token is not moved into the store: the daemon's heal (or set-token) puts the current one back first.
        const retired = new Set(c.sites.filter((s) => ctx.store.getToken(fingerprint(s.token))?.state === 'retired').map((s) => keyPathString(entryPathOf(s.keyPath))));
        for (const s of c.sites) {
          const kp = keyPathString(entryPathOf(s.keyPath));
          if (!retired.has(kp) || result.plaintext.some((x) => x.path === p && x.keyPath === kp)) continue;
          result.plaintext.push({ path: p, client: c.candidate.client, server: s.server, keyPath: kp, mode: 'plaintext', fingerprint: fingerprint(s.token), reason: 'the entry holds a retired token; run "mcp-token-rotator daemon" (it heals it) or "set-token", then "broker enable" again' });
        }
        const plan = planFile(
          snap.text,
          c.candidate.format,
          c.candidate.client,
          (_server, token, ep) => targetFor(ctx, slotFor(fingerprint(token)), endpointOk ? { origin: `http://127.0.0.1:${port}`, routeSecret: newRouteSecret() } : null, { portable: portable(ep), endpointMissing: endpointWhy }),
          { hosts: ctx.settings.mcpHosts, skip: (ep) => retired.has(keyPathString(ep)) },
        );
        for (const e of plan.entries) {
          const rep = report(p, c.candidate.client, e, slotFor(fingerprint(e.plan.token)));
          if (e.plan.mode === 'plaintext') result.plaintext.push(rep);
        }
        if (plan.text === snap.text) continue;
        if (!dryRun) await checkWritable(p, snap.realPath, { data: Buffer.from(plan.text, 'utf8'), mode: modeFor(snap, plan.entries) });
        work.push({ snap, client: c.candidate.client, format: c.candidate.format, entries: plan.entries, text: plan.text });
      } catch (e) {
        result.problems.push(problem(p, e));
      }
    }
    const convertedOf = (w: FileWork) => w.entries.filter((e) => e.plan.mode !== 'plaintext');
    // Portable entries run the bare command: say so when this user's PATH does not have it.
    const portableConverted = work.some((w) => convertedOf(w).some((e) => e.plan.mode !== 'endpoint' && (portableOf.get(w.snap.path)?.(e.entryPath) ?? false)));
    if (portableConverted && !(await onPath(BIN_NAME, ctx.pathEnv.env.PATH ?? process.env.PATH ?? ''))) {
      result.notes.push(
        `project-scoped entries run "${BIN_NAME}" from PATH (no path of yours in a shared file), but it is not on your PATH: install it ("npm run install-global" in a clone of mcp-token-rotator; the package is not on the npm registry yet), or the clients cannot start those entries ("mcp-token-rotator status" reports them)`,
      );
    }
    if (dryRun) {
      for (const w of work) {
        result.files.push(w.snap.path);
        for (const e of convertedOf(w)) result.converted.push(report(w.snap.path, w.client, e, slotFor(fingerprint(e.plan.token))));
      }
      if (!endpointOk && result.plaintext.some((e) => e.reason === endpointWhy)) result.notes.push(endpointWhy);
      return result;
    }
    if (!work.length) return result;

    // 2. The tokens into the store and their slots into the registry, before any config changes.
    setPending(ctx, 'enable');
    const needed = new Map<string, Secret>();
    for (const w of work) for (const e of convertedOf(w)) needed.set(fingerprint(e.plan.token), new Secret(e.plan.token));
    for (const [fp, secret] of needed) {
      const slot = slotFor(fp);
      const have = await store.read(slot);
      if (!have || !have.equals(secret)) await store.write(slot, secret);
      const back = await store.read(slot);
      if (!back || !back.equals(secret)) {
        throw new RotatorError('E_BROKER_STORE', `The ${store.backend} token store did not keep token ${fp} (${store.where}); no config was changed.`, {
          hint: 'Check the store (see "mcp-token-rotator doctor"), or set "broker": { "store": "file" } in the settings, then run "broker enable" again.',
        });
      }
      if (!reg.slot(slot)) reg.addSlot(slot, fp, ctx.nowIso());
    }
    // The port the daemon listens on is the one the configs will name: recorded, so the
    // daemon listens there again after a restart (or moves off it, renewing the secrets).
    if (port && ctx.store.getMeta(PORT_META) !== String(port) && work.some((w) => convertedOf(w).some((e) => e.plan.mode === 'endpoint'))) {
      ctx.store.setMeta(PORT_META, String(port));
    }
    failpoint('broker-after-store');

    // Where the tokens sat in plaintext until now (a git-tracked file, one others could read)
    // stays an exposure after the conversion: remembered, so doctor keeps saying so until
    // the token is rotated (--rotate does it now).
    await recordEnableExposures(ctx, work.map((w) => ({ path: w.snap.path, realPath: w.snap.realPath, mode: w.snap.stat.mode, fingerprints: [...new Set(convertedOf(w).map((e) => fingerprint(e.plan.token)))] })));

    // 3. Each config: rows, then the file, then read-back.
    for (const w0 of work) {
      let w = w0;
      const p = w.snap.path;
      let ids: number[] = [];
      try {
        for (let attempt = 1; ; attempt++) {
          ids = ctx.store.transaction(() =>
            convertedOf(w).map((e) => {
              const plan = e.plan as Extract<FileEntryPlan['plan'], { start: number }>;
              // Converted before, then put back in plaintext by a client: this conversion replaces that record.
              const old = reg.entry(p, keyPathString(e.entryPath));
              if (old) reg.removeEntry(old.id);
              return reg.addEntry({
                path: p,
                client: w.client,
                server: e.server,
                keyPath: keyPathString(e.entryPath),
                kind: plan.mode,
                slot: slotFor(fingerprint(plan.token)),
                originalText: plan.originalText,
                convertedText: plan.convertedText,
                upstreamUrl: plan.upstreamUrl,
                routeSecret: plan.routeSecret,
                enabledAt: ctx.nowIso(),
              });
            }),
          );
          failpoint('broker-after-entries-recorded');
          try {
            // A route secret is a credential: the file becomes private, and the user is told.
            const wantMode = modeFor(w.snap, w.entries);
            await writeConfig(w.snap, w.client, w.text, { mode: wantMode });
            const note = wantMode !== (w.snap.stat.mode & 0o7777) ? privateMode(p, w.snap.stat.mode).note : null;
            if (note) result.notes.push(note);
            break;
          } catch (e) {
            ctx.store.transaction(() => ids.forEach((id) => reg.removeEntry(id)));
            ids = [];
            if (!(e instanceof ConcurrentChangeError) || attempt >= 5) throw e;
            // Changed under us (the client saved it): plan again from what is there now.
            const snap = await readConfigFile(p);
            const portable = portableOf.get(p) ?? (() => false);
            const again = planFile(snap.text, w.format, w.client, (_s, token, ep) => targetFor(ctx, slotFor(fingerprint(token)), endpointOk ? { origin: `http://127.0.0.1:${port}`, routeSecret: newRouteSecret() } : null, { portable: portable(ep), endpointMissing: endpointWhy }), { hosts: ctx.settings.mcpHosts });
            if (again.text === snap.text) throw new ConfigFileError('E_CONFIG_CHANGED', p, `${p} changed during broker enable and has nothing left to convert.`, 'Run "mcp-token-rotator broker status" to see its entries.');
            for (const e of convertedOf({ ...w, entries: again.entries })) {
              if (!needed.has(fingerprint(e.plan.token))) throw new ConfigFileError('E_CONFIG_CHANGED', p, `${p} changed during broker enable and now holds another token.`, 'Run "mcp-token-rotator broker enable" again.');
            }
            w = { ...w, snap, entries: again.entries, text: again.text };
          }
        }
        failpoint('broker-after-file-written');
        await readBack(w);
        result.files.push(p);
        for (const e of convertedOf(w)) result.converted.push(report(p, w.client, e, slotFor(fingerprint(e.plan.token))));
      } catch (e) {
        result.problems.push(problem(p, e));
      }
    }
    await Promise.all([...new Set(work.map((w) => path.dirname(w.snap.realPath)))].map((d) => fsyncDir(d).catch(() => undefined)));
    clearPending(ctx);

    // Backups of the plaintext configs, every token blanked (they are all live).
    for (const w of work) {
      if (!result.files.includes(w.snap.path)) continue;
      const live = brokerSites(w.snap.text, w.format, ctx.settings.mcpHosts).sites.map((s) => s.token);
      await backupConfig(ctx.paths.backups, w.snap.path, w.snap.bytes, { redact: live, keep: ctx.settings.backupsToKeep, now: ctx.now() }).catch((e: unknown) =>
        ctx.log.warn({ file: w.snap.path, err: (e as Error).message }, 'could not keep a backup'),
      );
    }
    const byFp = new Map<string, string[]>();
    for (const c of result.converted) byFp.set(c.fingerprint, [...new Set([...(byFp.get(c.fingerprint) ?? []), c.path])]);
    for (const [fp, files] of byFp) {
      ctx.store.addEvent({ at: ctx.nowIso(), type: 'broker-enabled', fingerprint: fp, newFingerprint: null, source: 'manual', files, detail: `${result.converted.filter((c) => c.fingerprint === fp).length} entr(ies) converted` });
    }
    recordScan(ctx, await findTokens(ctx));
    return result;
  } finally {
    lock.release();
  }
}

/** The mode a config gets: private (0600-like) when one of its entries will carry a route secret, else its own. */
function modeFor(snap: ConfigSnapshot, entries: FileEntryPlan[]): number {
  const own = snap.stat.mode & 0o7777;
  return entries.some((e) => e.plan.mode === 'endpoint') ? privateMode(snap.path, own).mode : own;
}

/** Whether `name` is an executable in one of PATH's directories. */
async function onPath(name: string, pathVar: string): Promise<boolean> {
  const { access, constants } = await import('node:fs').then((m) => ({ access: m.promises.access, constants: m.constants }));
  for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
    if (await access(path.join(dir, name), constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

async function recordEnableExposures(ctx: Context, files: Array<{ path: string; realPath: string; mode: number; fingerprints: string[] }>): Promise<void> {
  const [{ gitFacts }, { recordExposures }] = await Promise.all([import('../doctor/git.js'), import('../doctor/exposure.js')]);
  const posix = ctx.pathEnv.platform !== 'win32';
  for (const f of files) {
    try {
      recordExposures(ctx, f.path, { mode: posix ? f.mode : null, git: await gitFacts(f.realPath, ctx.pathEnv.home), fingerprints: f.fingerprints });
    } catch (e) {
      ctx.log.warn({ file: f.path, err: (e as Error).message }, 'could not record where the token was exposed');
    }
  }
}

async function readBack(w: FileWork): Promise<void> {
  const snap = await readConfigFile(w.snap.path);
  for (const e of w.entries) {
    if (e.plan.mode === 'plaintext') continue;
    const loc = locateEntry(snap.text, w.format, e.entryPath);
    if (!loc || snap.text.slice(loc.start, loc.end) !== e.plan.convertedText) {
      throw new ConfigFileError('E_CONFIG_CHANGED', w.snap.path, `${w.snap.path} does not hold the converted entry "${e.server}" after the write.`, 'A program may be restoring its own copy; run "mcp-token-rotator broker status".');
    }
  }
}

function report(p: string, client: string, e: FileEntryPlan, slot: string): BrokerEntryReport {
  const base = { path: p, client, server: e.server, keyPath: keyPathString(e.entryPath), fingerprint: fingerprint(e.plan.token) };
  return e.plan.mode === 'plaintext' ? { ...base, mode: 'plaintext', reason: e.plan.reason } : { ...base, mode: modeOf(e.plan.mode), slot };
}

function problem(p: string, e: unknown): BrokerProblem {
  if (e instanceof RotatorError) return { path: p, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  return { path: p, message: `Cannot convert ${p}: ${(e as Error).message}`, hint: 'Check the file; it was left as it was.' };
}

export type { ScanResult };
