/**
 * A whole config's conversion: its token sites grouped by server entry, each entry planned
 * (convert.ts), the converted spans spliced in. Pure, and checked: the new text parses, and
 * no converted entry's token is left in a place a converted entry had it.
 */
import { locateTokens, type FileFormat, type KeyPath, type TokenSite } from '../../clients/formats.js';
import { EditError, replaceToken } from '../../clients/edit.js';
import { entryPathOf, planEntry, restoreEntry, RESTORE_PLACEHOLDER, type BrokerTarget, type ConvertedEntry, type EntryPlan } from './convert.js';
import { applySplices, ConvertError } from './ops.js';
import { parsePositions } from './positions.js';

export interface FileEntryPlan {
  entryPath: KeyPath;
  server: string;
  plan: EntryPlan;
}

export interface FilePlanResult {
  entries: FileEntryPlan[];
  /** The file with every convertible entry converted (equal to the input when none is). */
  text: string;
}

/**
 * The token sites of a config, for the broker. `hosts` are the settings' mcpHosts (more
 * hosts whose bearer values are Certorix tokens): the one place to pass them on once the
 * locators take them (helper "harden"); until then only hosts under certorix.com count.
 */
export function brokerSites(text: string, format: FileFormat, hosts: readonly string[] = []): ReturnType<typeof locateTokens> {
  void hosts;
  return locateTokens(text, format);
}

/** Groups a file's token sites by the server entry they are in, in file order. */
export function sitesByEntry(sites: TokenSite[]): Array<{ entryPath: KeyPath; server: string; sites: TokenSite[] }> {
  const groups = new Map<string, { entryPath: KeyPath; server: string; sites: TokenSite[] }>();
  for (const s of sites) {
    const entryPath = entryPathOf(s.keyPath);
    const id = JSON.stringify(entryPath);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { entryPath, server: s.server, sites: [] }));
    g.sites.push(s);
  }
  return [...groups.values()];
}

/**
 * Plans every entry of a config. `targetFor` gives each entry its slot and endpoint (the
 * caller decides slots per token lineage); `skip` leaves entries alone (already converted).
 */
export function planFile(
  text: string,
  format: FileFormat,
  client: string,
  targetFor: (server: string, token: string, entryPath: KeyPath) => BrokerTarget,
  opts: { skip?: (entryPath: KeyPath) => boolean; hosts?: readonly string[] } = {},
): FilePlanResult {
  const skip = opts.skip ?? (() => false);
  const located = brokerSites(text, format, opts.hosts);
  if (located.errors.length) throw new ConvertError(`cannot parse the config: ${located.errors[0] ?? ''}`);
  const entries: FileEntryPlan[] = [];
  for (const g of sitesByEntry(located.sites)) {
    if (skip(g.entryPath)) continue;
    const token = g.sites[0]?.token ?? '';
    entries.push({ entryPath: g.entryPath, server: g.server, plan: planEntry({ text, format, client, server: g.server, entryPath: g.entryPath, sites: g.sites }, targetFor(g.server, token, g.entryPath)) });
  }
  const splices = entries.flatMap((e) => (e.plan.mode === 'plaintext' ? [] : [{ start: e.plan.start, end: e.plan.end, text: e.plan.convertedText }]));
  if (!splices.length) return { entries, text };
  const next = applySplices(text, splices);
  verifyConverted(text, next, format, entries, opts.hosts);
  return { entries, text: next };
}

/** The converted file parses, and none of the converted entries' tokens remains at one of their sites. */
export function verifyConverted(before: string, after: string, format: FileFormat, entries: FileEntryPlan[], hosts: readonly string[] = []): void {
  if (format !== 'shell' && format !== 'fish' && format !== 'dotenv' && !parsePositions(after, format)) {
    throw new ConvertError('verification failed: the converted config no longer parses');
  }
  // A strict-JSON file stays strict JSON (no comment, no trailing comma crept in).
  if (format === 'json' && strictJson(before) && !strictJson(after)) throw new ConvertError('verification failed: the converted config is no longer strict JSON');
  const res = brokerSites(after, format, hosts);
  if (res.errors.length) throw new ConvertError('verification failed: the converted config no longer parses');
  const converted = new Set(entries.filter((e) => e.plan.mode !== 'plaintext').map((e) => JSON.stringify(e.entryPath)));
  for (const s of res.sites) {
    if (converted.has(JSON.stringify(entryPathOf(s.keyPath)))) throw new ConvertError('verification failed: a converted entry still holds a token');
  }
  if (after === before) throw new ConvertError('verification failed: nothing changed');
}


/**
 * The file with one converted entry back in plaintext, holding `token`. The token goes in
 * through the byte-exact replacer (escaped for its literal, verified); a site the locator
 * does not see (an upstream on a host outside the Certorix list) takes it verbatim when
 * no escaping is needed.
 */
export function restoreInFile(text: string, format: FileFormat, client: string, e: ConvertedEntry, token: string): { text: string; exact: boolean } {
  const r = restoreEntry({ text, format, client, entryPath: e.entryPath, kind: e.kind, slot: e.slot, originalText: e.originalText, convertedText: e.convertedText, upstreamUrl: e.upstreamUrl, token });
  const withPlaceholder = text.slice(0, r.start) + r.restoredText + text.slice(r.end);
  let out: string;
  try {
    out = replaceToken(withPlaceholder, format, RESTORE_PLACEHOLDER, token).text;
  } catch (err) {
    if (!(err instanceof EditError && err.notFound) || !/^[A-Za-z0-9_.~+/=-]+$/.test(token)) throw err;
    out = withPlaceholder.split(RESTORE_PLACEHOLDER).join(token);
    if (!parsePositions(out, format)) throw new ConvertError('verification failed: the restored config no longer parses');
  }
  if (out.includes(RESTORE_PLACEHOLDER)) throw new ConvertError('verification failed: the restored entry is incomplete');
  return { text: out, exact: r.exact };
}

function strictJson(text: string): boolean {
  try {
    JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    return true;
  } catch {
    return false;
  }
}
