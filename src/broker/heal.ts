/**
 * Watch and heal, broker side: a client that restores its own plaintext copy of a converted
 * entry (Claude Desktop rewriting its config from memory, a dotfiles sync) gets the entry
 * converted back. Only when the plaintext token is the slot's current token or a retired
 * ancestor of it: any other token is one the user put there on purpose, and swallowing it
 * into the broker would lose it, so it is left alone and logged.
 *
 * The plaintext heal's safeguards apply (rotation/heal-verdict.ts): only a file owned by the
 * user, not readable by others, outside git, that held the lineage (a converted entry of
 * it) is converted back; and only an entry that still runs the command (args, env, cwd) or
 * goes to the URL that was converted: a wrapper hands every future token to what the entry
 * runs, so a planted `command: evil.sh` with a retired token must never become one. A
 * refused file is reported (`refused`) and the plaintext heal leaves it alone as well.
 *
 * Called at the start of the daemon's heal (rotation/heal.ts), before retired tokens are
 * put back: a restored broker entry with a retired token is converted (dead token gone)
 * rather than filled with a plaintext successor. Also returns the slots' current tokens, so
 * plaintext entries elsewhere can be healed from the store when no config holds the token.
 */
import type { Context } from '../context.js';
import { keyPathString, readConfigFile } from '../clients/discover.js';
import type { KeyPath } from '../clients/formats.js';
import { fingerprint } from '../fingerprint.js';
import { FileLock } from '../lock.js';
import { findTokens, type ScanResult } from '../scan.js';
import type { Secret } from '../secret.js';
import { BrokerRegistry, type BrokerEntryRow } from './registry.js';
import { entryPathOf, launchChange, portableEntry } from './convert/convert.js';
import { fileFacts, healVerdict, type HealRefused, type HealVerdict } from '../rotation/heal-verdict.js';
import { shq } from '../doctor/finding.js';
import { planFile } from './convert/file.js';
import { formatOf, privateMode, targetFor, writeConfig } from './common.js';
import { slotTokens } from './locations.js';
import { reconcileBroker } from './reconcile.js';

export interface BrokerHealOutcome {
  scan: ScanResult;
  remembered: ReadonlyMap<string, Secret>;
  healed: string[];
  /** Restored entries left in plaintext by the safeguards (one per file and token). */
  refused: HealRefused[];
}

/** The message and fix of a broker heal refused by the file's facts or the entry's launch. */
export function describeBrokerRefusal(fp: string, file: string, servers: string[], v: Extract<HealVerdict, { heal: false }>, retired: boolean): { message: string; fix: string } {
  const which = servers.length === 1 ? `The converted entry "${servers[0] ?? ''}"` : `The converted entries ${servers.map((x) => `"${x}"`).join(', ')}`;
  const message = `${which} in ${file} came back in plaintext with token ${fp}; it was not converted back to broker mode, because ${v.why.join(', and ')}.`;
  const tokenFix = retired ? `its token ${fp} is retired (dead), so it grants nothing` : `its token ${fp} is live and now sits in that file: rotate it ("mcp-token-rotator rotate --fingerprint ${fp}")`;
  let fix: string;
  if (v.reasons.includes('launch-changed')) {
    fix = `If you changed the entry yourself, run "mcp-token-rotator broker enable" to convert it as it is now; otherwise find out who changed it and remove it (${tokenFix}).`;
  } else if (v.reasons.every((r) => r === 'readable-by-others')) {
    fix = `If ${file} is yours, make it private: chmod 600 ${shq(file)}; the daemon then converts the entry back (at its next look, or on SIGHUP).`;
  } else {
    fix = `Find out who put the entry back in ${file} (${tokenFix}). A file inside a git work tree or another user's file never gets a converted entry back by itself: edit it by hand or run "mcp-token-rotator broker enable".`;
  }
  return { message, fix };
}

/** Whether `fp` is `target` or one of its retired ancestors (following replaced_by). */
function inLineage(ctx: Context, fp: string, target: string): boolean {
  for (let cur: string | null = fp, i = 0; cur && i < 100; i++) {
    if (cur === target) return true;
    const row = ctx.store.getToken(cur);
    if (!row || row.state !== 'retired') return false;
    cur = row.replacedBy;
  }
  return false;
}

export async function healBrokerEntries(ctx: Context, scan: ScanResult, remembered: ReadonlyMap<string, Secret>): Promise<BrokerHealOutcome> {
  const reg = new BrokerRegistry(ctx.store);
  const rows = reg.entries();
  if (!rows.length) return { scan, remembered, healed: [], refused: [] };
  const fromStore = await slotTokens(ctx);
  const merged = new Map([...fromStore, ...remembered]);
  // A cheap look first (no lock): does any converted entry hold a plaintext token again?
  const dueIn = (sc: ScanResult, list: BrokerEntryRow[], warn: boolean) => {
    const due = new Map<string, Array<BrokerEntryRow & { fp: string }>>();
    for (const r of list) {
      const c = sc.configs.find((x) => x.candidate.path === r.path);
      if (!c || c.status !== 'ok') continue;
      const site = c.sites.find((s) => keyPathString(entryPathOf(s.keyPath)) === r.keyPath);
      if (!site) continue;
      const slotFp = reg.slot(r.slot)?.fingerprint;
      const fp = fingerprint(site.token);
      if (!slotFp || !inLineage(ctx, fp, slotFp)) {
        if (warn) ctx.log.warn({ file: r.path, server: r.server, fingerprint: fp, slot: r.slot }, 'a converted entry holds a plaintext token of another lineage; left alone (run "broker enable" to convert it)');
        continue;
      }
      due.set(r.path, [...(due.get(r.path) ?? []), { ...r, fp }]);
    }
    return due;
  };
  if (!dueIn(scan, rows, false).size) return { scan, remembered: merged, healed: [], refused: [] };
  const lock = new FileLock(ctx.paths.lock);
  await lock.acquire({ timeoutMs: 60_000, what: 'rotating tokens' });
  const healed: string[] = [];
  const refused: HealRefused[] = [];
  let fresh = scan;
  try {
    // Under the lock, from fresh rows and files: a broker disable that ran meanwhile put those
    // entries back on purpose (its rows are gone), and a crashed one is reconciled first.
    await reconcileBroker(ctx);
    fresh = await findTokens(ctx);
    const due = dueIn(fresh, reg.entries(), true);
    // Only the port this process's endpoint listens on now: no URL of a port that does not answer.
    const port = (await import('./endpoint/index.js')).listeningPort(ctx);
    const retired = (fp: string) => ctx.store.getToken(fp)?.state === 'retired';
    const refuse = (file: string, list: Array<BrokerEntryRow & { fp: string }>, v: Extract<HealVerdict, { heal: false }>) => {
      for (const fp of new Set(list.map((r) => r.fp))) {
        const servers = list.filter((r) => r.fp === fp).map((r) => r.server);
        refused.push({ fingerprint: fp, file, reasons: v.reasons, ...describeBrokerRefusal(fp, file, servers, v, retired(fp)) });
      }
    };
    // A converted entry's file held the lineage by definition (enable converted it from it).
    const facts = await fileFacts(ctx, [...due.keys()], () => true);
    for (const [p, all] of due) {
      const v = healVerdict(facts.find((f) => f.file === p) ?? { file: p, known: false, uid: null, userUid: null, mode: null, gitRoot: null });
      if (!v.heal) {
        refuse(p, all, v);
        continue;
      }
      let list = all;
      try {
        const snap = await readConfigFile(p);
        const client = (list[0] as BrokerEntryRow).client;
        const format = formatOf(ctx, p, client);
        let current: BrokerEntryRow | undefined;
        const planWith = (rowsNow: BrokerEntryRow[]) => {
          const byKeyNow = new Map(rowsNow.map((r) => [r.keyPath, r]));
          return planFile(
            snap.text,
            format,
            client,
            (_server, _token, ep) =>
              targetFor(ctx, (current as BrokerEntryRow).slot, current?.routeSecret && port ? { origin: `http://127.0.0.1:${port}`, routeSecret: current.routeSecret } : null, {
                // The form enable chose (git-tracked files are never healed, see healVerdict).
                portable: portableEntry({ origin: fresh.configs.find((c) => c.candidate.path === p)?.candidate.origin ?? 'catalog', gitTracked: false, client, entryPath: ep }),
              }),
            {
              hosts: ctx.settings.mcpHosts,
              skip: (entryPath: KeyPath) => {
                current = byKeyNow.get(keyPathString(entryPath));
                return current === undefined;
              },
            },
          );
        };
        let plan = planWith(list);
        // Each entry must still run what was converted (or go to the same URL).
        const changed: Array<BrokerEntryRow & { fp: string }> = [];
        const why: string[] = [];
        for (const e of plan.entries) {
          if (e.plan.mode === 'plaintext') continue;
          const r = list.find((x) => x.keyPath === keyPathString(e.entryPath));
          if (!r) continue;
          const diff = launchChange(snap.text, format, e.entryPath, e.plan.start, e.plan.end, e.plan.originalText, r.originalText);
          if (diff) {
            changed.push(r);
            why.push(`"${r.server}": ${diff}`);
          }
        }
        if (changed.length) {
          refuse(p, changed, { heal: false, reasons: ['launch-changed'], why: [`the entry no longer runs what was converted (${why.join('; ')}), and a converted entry hands every future token to what it runs`] });
          list = list.filter((r) => !changed.includes(r));
          if (!list.length) continue;
          plan = planWith(list);
        }
        const byKey = new Map(list.map((r) => [r.keyPath, r]));
        // Checked again on the bytes about to be replaced: the token there must be of the slot's
        // lineage, and the slot's current token must be in the store, or nothing is converted.
        const done = plan.entries.filter((e) => {
          const r = byKey.get(keyPathString(e.entryPath));
          const slotFp = r ? reg.slot(r.slot)?.fingerprint : undefined;
          return e.plan.mode !== 'plaintext' && slotFp !== undefined && fromStore.has(slotFp) && inLineage(ctx, fingerprint(e.plan.token), slotFp);
        });
        if (done.length !== plan.entries.filter((e) => e.plan.mode !== 'plaintext').length) {
          ctx.log.error({ file: p }, 'a restored plaintext entry was not converted back: its token is not of the slot\'s lineage, or the store lacks the slot\'s token (see "broker status")');
          continue;
        }
        if (!done.length) continue;
        // A route secret is a credential: such a config is private (as enable leaves it).
        const priv = done.some((e) => e.plan.mode === 'endpoint') ? privateMode(p, snap.stat.mode) : null;
        await writeConfig(snap, client, plan.text, priv ? { mode: priv.mode } : {});
        if (priv?.note) ctx.log.warn({ file: p }, priv.note);
        ctx.store.transaction(() => {
          for (const e of done) {
            const r = byKey.get(keyPathString(e.entryPath)) as BrokerEntryRow;
            const pl = e.plan as Extract<typeof e.plan, { start: number }>;
            reg.setConvertedText(r.id, pl.convertedText);
          }
          ctx.store.addEvent({ at: ctx.nowIso(), type: 'healed', fingerprint: fingerprint((done[0] as (typeof done)[0]).plan.token), newFingerprint: null, source: 'watch', files: [p], detail: 'a restored plaintext entry was converted back to broker mode' });
        });
        healed.push(p);
        ctx.log.info({ file: p, entries: done.length }, 'healed: a restored plaintext entry was converted back to broker mode');
      } catch (e) {
        ctx.log.error({ file: p, err: (e as Error).message }, 'could not convert a restored plaintext entry back to broker mode');
      }
    }
  } finally {
    lock.release();
  }
  return { scan: healed.length ? await findTokens(ctx) : fresh, remembered: merged, healed, refused };
}
