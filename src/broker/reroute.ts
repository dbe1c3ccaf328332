/**
 * Renewing the local endpoint's routes: new route secrets (and, after a port move, a new port)
 * for every converted endpoint entry, written into the configs with enable's care (byte-exact,
 * only the URL inside the entry changes, atomic compare-before-rename, client lock, read-back)
 * and the configs made private (a route secret is a credential).
 *
 * Used by `revoke-now` (a leaked config leaked its route secret too) and by the daemon when
 * the recorded port was taken at start (whoever holds it has seen the clients' requests).
 *
 * Order, for crashes: a durable "reroute pending" note; the registry rows (new secret, new
 * converted text) in one transaction; then each file. A crash in between leaves files whose
 * entries differ from their rows only in the endpoint URL; the next daemon start sees the note
 * and finishes (`finishReroute`): an entry that differs in anything else is left alone.
 */
import type { Context } from '../context.js';
import { readConfigFile } from '../clients/discover.js';
import type { KeyPath } from '../clients/formats.js';
import { fsyncDir } from '../clients/write.js';
import { FileLock } from '../lock.js';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { BrokerRegistry, newRouteSecret, type BrokerEntryRow } from './registry.js';
import { locateEntry } from './convert/positions.js';
import { formatOf, PORT_META, privateMode, writeConfig } from './common.js';

export const REROUTE_META = 'broker.reroute-pending';
/** Set when the daemon moved off a taken port: `{ from, to, at, holderUid }` (status, doctor). */
export const MOVED_META = 'broker.port-moved';

export interface MovedNote {
  from: number;
  to: number;
  at: string;
  /** The uid listening on the old port when the daemon moved (Linux), if known. */
  holderUid?: number | null;
}

export interface RerouteResult {
  /** Configs rewritten with the new URLs. */
  files: string[];
  /** Lines for the user: files made private, entries that could not be rewritten. */
  notes: string[];
  problems: string[];
}

const URL_IN_TEXT = /http:\/\/127\.0\.0\.1:\d{1,5}\/[A-Za-z0-9_-]{1,128}\//g;

/** Pure: the converted text with its endpoint URL's port and secret replaced; null unless exactly one URL of that secret is there. */
export function swapRoute(text: string, oldSecret: string, port: number, newSecret: string): string | null {
  const hits = [...text.matchAll(URL_IN_TEXT)].filter((m) => m[0].endsWith(`/${oldSecret}/`));
  if (hits.length !== 1) return null;
  const m = hits[0] as RegExpMatchArray;
  const at = m.index ?? 0;
  return text.slice(0, at) + `http://127.0.0.1:${port}/${newSecret}/` + text.slice(at + m[0].length);
}

/** Pure: whether two entry texts differ only in their endpoint URLs' port and secret. */
export function sameButRoute(a: string, b: string): boolean {
  const norm = (t: string) => t.replace(URL_IN_TEXT, 'http://127.0.0.1:0/-/');
  return norm(a) === norm(b);
}

/**
 * New secrets (and `port`) for every endpoint entry, then the configs. Takes the rotation
 * lock unless the caller holds it. `invalidate` tells the running endpoint (same process) to
 * reload its routes before any file names the new secrets.
 */
export async function renewRoutes(ctx: Context, opts: { port: number; invalidate?: () => void; lockHeld?: boolean }): Promise<RerouteResult> {
  const lock = new FileLock(ctx.paths.lock);
  if (!opts.lockHeld) await lock.acquire({ timeoutMs: 60_000, what: 'rotating tokens' });
  try {
    const reg = new BrokerRegistry(ctx.store);
    const rows = reg.entries().filter((r) => r.kind === 'endpoint' && r.routeSecret);
    const problems: string[] = [];
    ctx.store.setMeta(REROUTE_META, JSON.stringify({ at: ctx.nowIso(), port: opts.port }));
    ctx.store.transaction(() => {
      for (const r of rows) {
        const secret = newRouteSecret();
        const text = swapRoute(r.convertedText, r.routeSecret as string, opts.port, secret);
        if (text === null) {
          problems.push(`${r.path} (${r.server}): its recorded entry does not hold one endpoint URL; its route was not renewed. Run "mcp-token-rotator broker disable" then "broker enable".`);
          continue;
        }
        reg.setRoute(r.id, secret, text);
      }
      ctx.store.setMeta(PORT_META, String(opts.port));
    });
    opts.invalidate?.();
    const res = await finishReroute(ctx, { lockHeld: true });
    return { ...res, problems: [...problems, ...res.problems] };
  } finally {
    if (!opts.lockHeld) lock.release();
  }
}

/**
 * Brings every endpoint entry whose file text differs from its row only in the endpoint URL
 * to the row's text, and makes every config holding a route secret private. Clears the
 * pending note. Run by `renewRoutes`, and at daemon start when the note is there (or always,
 * for the modes: it only reads when nothing is due).
 */
export async function finishReroute(ctx: Context, opts: { lockHeld?: boolean } = {}): Promise<RerouteResult> {
  const lock = new FileLock(ctx.paths.lock);
  if (!opts.lockHeld) await lock.acquire({ timeoutMs: 60_000, what: 'rotating tokens' });
  const out: RerouteResult = { files: [], notes: [], problems: [] };
  try {
    const reg = new BrokerRegistry(ctx.store);
    const byFile = new Map<string, BrokerEntryRow[]>();
    for (const r of reg.entries()) if (r.kind === 'endpoint' && r.routeSecret) byFile.set(r.path, [...(byFile.get(r.path) ?? []), r]);
    const dirs = new Set<string>();
    for (const [p, rows] of byFile) {
      try {
        const snap = await readConfigFile(p).catch(() => null);
        if (!snap) continue; // gone: status reports it
        const client = (rows[0] as BrokerEntryRow).client;
        const format = formatOf(ctx, p, client);
        const splices: Array<{ start: number; end: number; text: string }> = [];
        for (const r of rows) {
          const loc = locateEntry(snap.text, format, JSON.parse(r.keyPath) as KeyPath);
          if (!loc) continue;
          const cur = snap.text.slice(loc.start, loc.end);
          if (cur !== r.convertedText && sameButRoute(cur, r.convertedText)) splices.push({ start: loc.start, end: loc.end, text: r.convertedText });
        }
        const priv = privateMode(p, snap.stat.mode);
        if (splices.length) {
          splices.sort((a, b) => b.start - a.start);
          let text = snap.text;
          for (const s of splices) text = text.slice(0, s.start) + s.text + text.slice(s.end);
          await writeConfig(snap, client, text, { mode: priv.mode });
          const back = await readConfigFile(p);
          if (!back.bytes.equals(Buffer.from(text, 'utf8'))) throw new Error('the file does not hold the new text after the write');
          out.files.push(p);
          dirs.add(path.dirname(snap.realPath));
        } else if (priv.note) {
          await chmod(snap.realPath, priv.mode);
        }
        if (priv.note) out.notes.push(priv.note);
      } catch (e) {
        out.problems.push(`${p}: its endpoint URL could not be renewed (${(e as Error).message}); the daemon tries again at its next start. Run "mcp-token-rotator broker status".`);
      }
    }
    await Promise.all([...dirs].map((d) => fsyncDir(d).catch(() => undefined)));
    if (!out.problems.length) ctx.store.db.prepare('DELETE FROM meta WHERE key = ?').run(REROUTE_META);
    return out;
  } finally {
    if (!opts.lockHeld) lock.release();
  }
}

export function readMoved(ctx: Context): MovedNote | null {
  const v = ctx.store.getMeta(MOVED_META);
  if (!v) return null;
  try {
    return JSON.parse(v) as MovedNote;
  } catch {
    return null;
  }
}

/**
 * After `revoke-now`: a leak of a config leaked its route secret too, so every endpoint entry
 * gets a new one (same port). Running clients keep the sessions they opened with the old one
 * (see routes.ts); anything new needs the new URL. Adds what the user must know to `res`.
 */
export async function renewAfterRevoke<R extends { warnings: string[]; notices?: string[] }>(ctx: Context, res: R): Promise<R> {
  const reg = new BrokerRegistry(ctx.store);
  const n = reg.entries().filter((r) => r.kind === 'endpoint' && r.routeSecret).length;
  if (!n) return res;
  const { endpointPort, routesChanged } = await import('./endpoint/index.js');
  const port = endpointPort(ctx);
  const notices = [...(res.notices ?? [])];
  const warnings = [...res.warnings];
  if (port === null) {
    warnings.push('the local endpoint has no recorded port, so its route secrets were not renewed; run "mcp-token-rotator broker disable" then "broker enable".');
    return { ...res, warnings, notices };
  }
  try {
    const r = await renewRoutes(ctx, { port, invalidate: () => routesChanged(ctx) });
    notices.push(
      `the local endpoint's route secrets were renewed too (${r.files.length} config(s) rewritten): sessions already open keep working; anything new needs the URL now in the config (clients that do not reload their config need a restart).`,
      ...r.notes,
    );
    warnings.push(...r.problems);
  } catch (e) {
    warnings.push(`the local endpoint's route secrets could not be renewed (${(e as Error).message}); run "mcp-token-rotator revoke-now --yes" again.`);
  }
  return { ...res, warnings, notices };
}
