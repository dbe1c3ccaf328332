/**
 * `broker disable`: every converted entry back to plaintext, holding the current token
 * (from the store). Byte for byte the entry it was before enable when nobody changed the
 * converted entry since (so with an unchanged token the file is identical to before
 * enable); otherwise the conversion is undone on the current text and the user is told.
 * Same care as enable: the rotation lock, preflight of every file first, atomic writes,
 * read-back, the pending note for crash reconciliation. A slot's token leaves the store
 * only once every entry of that slot is durably back in plaintext.
 */
import type { Context } from '../context.js';
import { isGoneError, readConfigFile, type ConfigSnapshot } from '../clients/discover.js';
import { checkWritable, ConcurrentChangeError, fsyncDir } from '../clients/write.js';
import type { FileFormat, KeyPath } from '../clients/formats.js';
import { RotatorError } from '../errors.js';
import { FileLock } from '../lock.js';
import { failpoint } from '../rotation/failpoints.js';
import { recordScan, findTokens } from '../scan.js';
import type { Secret } from '../secret.js';
import { BrokerRegistry, type BrokerEntryRow } from './registry.js';
import { entryPathOf } from './convert/convert.js';
import { brokerSites, restoreInFile } from './convert/file.js';
import { locateEntry } from './convert/positions.js';
import { clearPending, formatOf, modeOf, openBrokerStore, setPending, writeConfig, type BrokerEntryRef } from './common.js';
import { reconcileBroker } from './reconcile.js';
import { unpinBackend } from './store.js';
import type { BrokerProblem } from './enable.js';
import path from 'node:path';

export interface RestoredEntry extends BrokerEntryRef {
  /** false: the entry had been edited since enable and was restored from its current form. */
  exact: boolean;
}

export interface DisableResult {
  dryRun: boolean;
  restored: RestoredEntry[];
  problems: BrokerProblem[];
  files: string[];
  notes: string[];
}

interface FileWork {
  snap: ConfigSnapshot;
  client: string;
  format: FileFormat;
  rows: BrokerEntryRow[];
  text: string;
  restored: RestoredEntry[];
}

export async function brokerDisable(ctx: Context, opts: { dryRun?: boolean } = {}): Promise<DisableResult> {
  const dryRun = opts.dryRun === true;
  const lock = new FileLock(ctx.paths.lock);
  if (!dryRun) await lock.acquire({ timeoutMs: 30_000, what: 'rotating tokens' });
  try {
    const notes = dryRun ? [] : await reconcileBroker(ctx);
    const reg = new BrokerRegistry(ctx.store);
    const store = await openBrokerStore(ctx);
    const result: DisableResult = { dryRun, restored: [], problems: [], files: [], notes };
    const tokens = new Map<string, Secret>();
    for (const s of reg.slots()) {
      const t = await store.read(s.slot);
      if (t) tokens.set(s.slot, t);
    }
    const byPath = new Map<string, BrokerEntryRow[]>();
    for (const r of reg.entries()) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);

    // Preflight: plan every file before writing any.
    const work: FileWork[] = [];
    for (const [p, rows] of byPath) {
      const client = (rows[0] as BrokerEntryRow).client;
      try {
        let snap: ConfigSnapshot;
        try {
          snap = await readConfigFile(p);
        } catch (e) {
          if (!isGoneError(e)) throw e;
          if (!dryRun) ctx.store.transaction(() => rows.forEach((r) => reg.removeEntry(r.id)));
          result.notes.push(`${p} no longer exists; its ${rows.length} converted entr(ies) were forgotten.`);
          continue;
        }
        const planned = planRestore(ctx, snap, client, rows, tokens);
        if (!dryRun) await checkWritable(p, snap.realPath, { data: Buffer.from(planned.text, 'utf8'), mode: snap.stat.mode });
        work.push(planned);
      } catch (e) {
        result.problems.push(problemOf(p, e));
      }
    }
    if (dryRun) {
      for (const w of work) {
        result.files.push(w.snap.path);
        result.restored.push(...w.restored);
      }
      return result;
    }
    if (work.length) setPending(ctx, 'disable');
    for (const w0 of work) {
      let w = w0;
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            await writeConfig(w.snap, w.client, w.text);
            break;
          } catch (e) {
            if (!(e instanceof ConcurrentChangeError) || attempt >= 5) throw e;
            w = planRestore(ctx, await readConfigFile(w.snap.path), w.client, w.rows, tokens);
          }
        }
        failpoint('broker-after-file-written');
        await readBack(w, tokens, ctx.settings.mcpHosts);
        ctx.store.transaction(() => w.rows.forEach((r) => reg.removeEntry(r.id)));
        result.files.push(w.snap.path);
        result.restored.push(...w.restored);
      } catch (e) {
        result.problems.push(problemOf(w.snap.path, e));
      }
    }
    await Promise.all([...new Set(work.map((w) => path.dirname(w.snap.realPath)))].map((d) => fsyncDir(d).catch(() => undefined)));
    // A slot whose entries are all plaintext again: its token is in those configs now.
    for (const s of reg.slots()) {
      if (reg.entriesForSlot(s.slot).length) continue;
      if (!result.restored.some((r) => r.fingerprint === s.fingerprint)) continue;
      await store.remove(s.slot);
      reg.removeSlot(s.slot);
    }
    // Nothing left in the store: the next enable chooses it again (the keychain, once it answers).
    if (!reg.slots().length) unpinBackend(ctx);
    clearPending(ctx);
    const byFp = new Map<string, string[]>();
    for (const r of result.restored) byFp.set(r.fingerprint, [...new Set([...(byFp.get(r.fingerprint) ?? []), r.path])]);
    for (const [fp, files] of byFp) {
      ctx.store.addEvent({ at: ctx.nowIso(), type: 'broker-disabled', fingerprint: fp, newFingerprint: null, source: 'manual', files, detail: `${result.restored.filter((r) => r.fingerprint === fp).length} entr(ies) back in plaintext` });
    }
    recordScan(ctx, await findTokens(ctx));
    return result;
  } finally {
    lock.release();
  }
}

function planRestore(ctx: Context, snap: ConfigSnapshot, client: string, rows: BrokerEntryRow[], tokens: Map<string, Secret>): FileWork {
  const format = formatOf(ctx, snap.path, client);
  let text = snap.text;
  const restored: RestoredEntry[] = [];
  // Last entry first, so earlier spans keep their offsets.
  const ordered = [...rows].sort((a, b) => spanStart(snap.text, format, b) - spanStart(snap.text, format, a));
  for (const r of ordered) {
    const token = tokens.get(r.slot);
    if (!token) {
      const slotFp = new BrokerRegistry(ctx.store).slot(r.slot)?.fingerprint ?? '?';
      throw new RotatorError('E_BROKER_STORE', `The token store has no token for slot ${r.slot} (token ${slotFp}), which ${snap.path} uses; nothing was restored in this file.`, {
        hint: `Pipe the current token to "mcp-token-rotator set-token --fingerprint ${slotFp}", then run "broker disable" again.`,
      });
    }
    const entryPath = JSON.parse(r.keyPath) as KeyPath;
    const out = restoreInFile(text, format, client, { entryPath, kind: r.kind, slot: r.slot, originalText: r.originalText, convertedText: r.convertedText, upstreamUrl: r.upstreamUrl }, token.reveal());
    text = out.text;
    restored.push({ path: snap.path, client, server: r.server, keyPath: r.keyPath, mode: modeOf(r.kind), fingerprint: token.fingerprint, exact: out.exact });
  }
  return { snap, client, format, rows, text, restored: restored.reverse() };
}

function spanStart(text: string, format: FileFormat, r: BrokerEntryRow): number {
  return locateEntry(text, format, JSON.parse(r.keyPath) as KeyPath)?.start ?? 0;
}

async function readBack(w: FileWork, tokens: Map<string, Secret>, hosts: readonly string[]): Promise<void> {
  const snap = await readConfigFile(w.snap.path);
  const sites = brokerSites(snap.text, w.format, hosts).sites;
  for (const r of w.rows) {
    const id = r.keyPath;
    const want = tokens.get(r.slot)?.reveal();
    const ok = sites.some((s) => JSON.stringify(entryPathOf(s.keyPath)) === id && s.token === want);
    // An entry on a host outside the Certorix list is not located; its text must then hold the token.
    if (!ok && !(want && snap.text.includes(want))) {
      throw new RotatorError('E_BROKER', `${w.snap.path} does not hold the token in "${r.server}" after the write.`, { file: w.snap.path, hint: 'Run "mcp-token-rotator broker status"; the token is still in the store.' });
    }
  }
}

function problemOf(p: string, e: unknown): BrokerProblem {
  if (e instanceof RotatorError) return { path: p, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  return { path: p, message: `Cannot restore ${p}: ${(e as Error).message}`, hint: 'The entry stays converted and its token stays in the store; edit the entry by hand, or report this.' };
}
