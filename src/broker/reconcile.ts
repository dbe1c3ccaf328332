import type { Context } from '../context.js';
import { isGoneError, readConfigFile } from '../clients/discover.js';
import type { KeyPath } from '../clients/formats.js';
import { brokerSites } from './convert/file.js';
import { removeStaleTemps } from '../clients/write.js';
import { findTokens, type ScanResult } from '../scan.js';
import { BrokerRegistry } from './registry.js';
import { entryPathOf } from './convert/convert.js';
import { locateEntry } from './convert/positions.js';
import { clearPending, formatOf, openBrokerStore, readPending } from './common.js';

/**
 * Finishes what a broker enable or disable killed mid-way left behind (the caller holds the
 * rotation lock). Only runs when the durable "pending" note says one was in progress:
 * - a row whose entry is still (or again) plaintext in its file: that write never landed
 *   (enable) or did (disable); either way the file is the truth and the row goes;
 * - a row whose file is gone goes too;
 * - a slot left without entries goes, with its stored token, only when a config holds
 *   that token: a token that lives only in the store is never dropped.
 * Returns notes for the user.
 */
export async function reconcileBroker(ctx: Context, scanIn?: ScanResult): Promise<string[]> {
  const pending = readPending(ctx);
  if (!pending) return [];
  const notes: string[] = [];
  const reg = new BrokerRegistry(ctx.store);
  for (const row of reg.entries()) {
    let text: string;
    let realPath = row.path;
    try {
      const snap = await readConfigFile(row.path);
      text = snap.text;
      realPath = snap.realPath;
    } catch (e) {
      if (isGoneError(e)) reg.removeEntry(row.id);
      continue;
    }
    await removeStaleTemps(realPath).catch(() => []);
    const format = formatOf(ctx, row.path, row.client);
    const entryPath = JSON.parse(row.keyPath) as KeyPath;
    const loc = locateEntry(text, format, entryPath);
    if (loc && text.slice(loc.start, loc.end) === row.convertedText) continue;
    const id = JSON.stringify(entryPath);
    const plaintext = brokerSites(text, format, ctx.settings.mcpHosts).sites.some((s) => JSON.stringify(entryPathOf(s.keyPath)) === id);
    if (plaintext || !loc) {
      reg.removeEntry(row.id);
      notes.push(`An interrupted "broker ${pending.op}" left ${row.path} (${row.server}) in plaintext form; its record was dropped${pending.op === 'enable' ? '; run "broker enable" again to convert it' : ''}.`);
    }
  }
  const scan = scanIn ?? (await findTokens(ctx));
  const store = await openBrokerStore(ctx);
  for (const slot of reg.slots()) {
    if (reg.entriesForSlot(slot.slot).length || !scan.tokens.has(slot.fingerprint)) continue;
    await store.remove(slot.slot);
    reg.removeSlot(slot.slot);
  }
  clearPending(ctx);
  return notes;
}
