/**
 * Broker mode's health as `status` reports it: the converted entries that cannot work right
 * now, each with the fix. An endpoint entry while the local endpoint does not answer (the
 * daemon is down, or a failed install-service left it unstarted), and a wrapper entry whose
 * program no longer exists (the package moved, Node.js upgraded, the tool uninstalled).
 *
 * Pure verdicts (`brokerProblems`, `wrapperPrograms`) and thin I/O (`brokerHealth`). Fast
 * and offline by design, since status runs it every time: no network beyond one TCP connect
 * to our own loopback port with a short timeout, no daemon call, no config parsing (the
 * wrapper's programs are read from the entry text enable recorded).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import type { Platform } from '../paths.js';
import { BrokerRegistry, type BrokerEntryRow } from './registry.js';
import { portAnswers } from './port-probe.js';

export interface BrokerProblem {
  kind: 'endpoint-down' | 'endpoint-stranger' | 'wrapper-missing';
  message: string;
  fix: string;
  files: string[];
}

export interface HealthFacts {
  platform: Platform;
  /** Entries converted to the local endpoint, with whether it answers; null when there are none. */
  endpoint: {
    port: number | null;
    up: boolean;
    unitFile: boolean;
    entries: Array<Pick<BrokerEntryRow, 'path' | 'client' | 'server'>>;
    /** Linux: the uid that owns the listening socket when it is not this user (a squatter); null when it is ours or unknown. */
    strangerUid?: number | null;
  } | null;
  /** Wrapper entries whose programs were looked for, and the ones not found. */
  wrappers: Array<Pick<BrokerEntryRow, 'path' | 'client' | 'server'> & { missing: string[] }>;
  /** The CLI as this process runs it: what the entries should run instead. */
  cli: string;
}

const DISABLE = '"mcp-token-rotator broker disable" puts the tokens back in those configs';

/** Pure: the problems to report, at most one per kind, naming every file concerned. */
export function brokerProblems(f: HealthFacts): BrokerProblem[] {
  const out: BrokerProblem[] = [];
  const ep = f.endpoint;
  if (ep && ep.entries.length && !ep.up) {
    const files = [...new Set(ep.entries.map((e) => e.path))];
    const where = ep.port === null ? 'no port is recorded' : `127.0.0.1:${ep.port} does not answer`;
    const start =
      f.platform === 'darwin'
        ? 'launchctl kickstart gui/$(id -u)/com.mcp-token-rotator.daemon'
        : 'systemctl --user start mcp-token-rotator';
    out.push({
      kind: 'endpoint-down',
      message: `The local endpoint is down (${where}): ${ep.entries.length} remote entr${ep.entries.length === 1 ? 'y uses' : 'ies use'} it and cannot connect (${files.join(', ')}).`,
      fix: ep.unitFile
        ? `Start the service ("${start}") and check its log, or run "mcp-token-rotator install-service" again; or ${DISABLE}.`
        : `Run "mcp-token-rotator install-service" (or keep "mcp-token-rotator daemon" running); or ${DISABLE}.`,
      files,
    });
  }
  if (ep && ep.entries.length && ep.up && ep.strangerUid != null && ep.port !== null) {
    const files = [...new Set(ep.entries.map((e) => e.path))];
    out.push({
      kind: 'endpoint-stranger',
      message: `127.0.0.1:${ep.port}, the local endpoint's port, is held by another program (uid ${ep.strangerUid}), not your daemon: ${ep.entries.length} remote entr${ep.entries.length === 1 ? 'y sends its' : 'ies send their'} requests and route secrets to it (${files.join(', ')}).`,
      fix: `Restart the daemon now (it moves to a free port with new route secrets and rewrites those configs), then run "mcp-token-rotator doctor"; or ${DISABLE}.`,
      files,
    });
  }
  const broken = f.wrappers.filter((w) => w.missing.length);
  if (broken.length) {
    const files = [...new Set(broken.map((w) => w.path))];
    const missing = [...new Set(broken.flatMap((w) => w.missing))];
    out.push({
      kind: 'wrapper-missing',
      // A bare name (a portable project entry's `mcp-token-rotator`) was looked up on PATH: it may never have been there.
      message: `${broken.length} broker entr${broken.length === 1 ? 'y runs' : 'ies run'} ${missing.map((m) => (/[\\/]/.test(m) ? `${m} (no longer exists)` : `${m} (not found on PATH)`)).join(', ')}: the client cannot start ${broken.length === 1 ? 'it' : 'them'} (${files.join(', ')}).`,
      fix: `Run "mcp-token-rotator broker disable", then "mcp-token-rotator broker enable" with the mcp-token-rotator installed now (${f.cli}): the entries get its current paths. Uninstalling? ${DISABLE} (run it before removing the tool).`,
      files,
    });
  }
  return out;
}

/** The double-quoted string values of an entry text, decoded (enable writes every value it adds that way); keys are skipped. */
function quotedStrings(text: string): string[] {
  const out: string[] = [];
  const keyEnd = /[ \t]*[:=]/y;
  for (const m of text.matchAll(/"((?:[^"\\\n]|\\.)*)"/g)) {
    keyEnd.lastIndex = (m.index ?? 0) + m[0].length;
    if (keyEnd.test(text)) continue; // a key, not a value
    try {
      out.push(JSON.parse(`"${m[1]}"`) as string);
    } catch {
      // a TOML escape JSON does not know: not one of ours
    }
  }
  return out;
}

/** Words of a POSIX shell command line as shellJoin writes it (quotes, backslashes). */
export function shellWords(line: string): string[] {
  const out: string[] = [];
  let cur: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return out;
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let s = '';
      for (i++; i < line.length && line[i] !== '"'; i++) s += line[i] === '\\' && i + 1 < line.length ? line[++i] : line[i];
      cur = (cur ?? '') + s;
    } else if (c === '\\' && i + 1 < line.length) {
      cur = (cur ?? '') + line[++i];
    } else if (/\s/.test(c)) {
      if (cur !== null) out.push(cur);
      cur = null;
    } else cur = (cur ?? '') + c;
  }
  if (cur !== null) out.push(cur);
  return out;
}

/**
 * Pure: the programs a converted entry makes its client run, from the entry text enable
 * wrote: `[node, cli]` for `node cli exec|headers <slot> ...`, `[command]` for a bare
 * `mcp-token-rotator exec <slot>`; null when the text does not show the wrapper (an endpoint
 * entry, or a layout this reader does not follow: then nothing is claimed).
 */
export function wrapperPrograms(convertedText: string, kind: BrokerEntryRow['kind'], slot: string): string[] | null {
  let words: string[];
  let verb: string;
  if (kind === 'exec') {
    words = quotedStrings(convertedText);
    verb = 'exec';
  } else if (kind === 'headers-helper') {
    const line = quotedStrings(convertedText).find((s) => s.includes(' headers ') && s.includes(slot));
    if (!line) return null;
    words = shellWords(line);
    verb = 'headers';
  } else return null;
  const i = words.findIndex((w, j) => w === verb && words[j + 1] === slot);
  if (i < 1) return null;
  const cli = words[i - 1] as string;
  // The CLI as a script (node main.js) or as a command of its own (the bin link, on PATH).
  if (/\.[cm]?js$/.test(cli) && i >= 2) return [words[i - 2] as string, cli];
  return [cli];
}

/** Whether `program` can be run: an absolute path that exists (executable, or a readable script), or a bare name found on PATH. */
async function findable(program: string, script: boolean, env: Record<string, string | undefined>): Promise<boolean> {
  const mode = script ? constants.R_OK : constants.X_OK;
  if (path.isAbsolute(program)) return access(program, mode).then(() => true, () => false);
  if (program.includes('/') || program.includes('\\')) return true; // relative to the client's cwd: not ours to judge
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    if (await access(path.join(dir, program), constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

/** The I/O: registry rows, one loopback connect, a stat per wrapper program. Never throws. */
export async function brokerHealth(ctx: Context, opts: { connectTimeoutMs?: number } = {}): Promise<BrokerProblem[]> {
  let rows: BrokerEntryRow[];
  try {
    rows = new BrokerRegistry(ctx.store).entries();
  } catch {
    return []; // a store from before broker mode: nothing converted
  }
  if (!rows.length) return [];
  const env = ctx.pathEnv.env;
  const endpointRows = rows.filter((r) => r.kind === 'endpoint');
  let endpoint: HealthFacts['endpoint'] = null;
  if (endpointRows.length) {
    const { PORT_META } = await import('./common.js');
    const meta = ctx.store.getMeta(PORT_META);
    const port = ctx.settings.broker.port ?? (meta ? Number(meta) : null);
    const up = port !== null && Number.isInteger(port) ? await portAnswers(port, opts.connectTimeoutMs ?? 300) : false;
    let unitFile = false;
    try {
      const { unitPathFor } = await import('../service/paths.js');
      await access(unitPathFor(ctx.pathEnv.platform, ctx.pathEnv.home, env).unitPath);
      unitFile = true;
    } catch {
      // no unit (or no service support on this platform)
    }
    // Something answers: on Linux, make sure it is this user's socket and not a squatter's.
    let strangerUid: number | null = null;
    if (up && port !== null && typeof process.getuid === 'function') {
      const { listenerUid } = await import('./endpoint/owner.js');
      const holder = await listenerUid(port, ctx.pathEnv.platform);
      if (holder !== null && holder !== process.getuid()) strangerUid = holder;
    }
    endpoint = { port, up, unitFile, entries: endpointRows, strangerUid };
  }
  const wrappers: HealthFacts['wrappers'] = [];
  const checked = new Map<string, Promise<boolean>>();
  for (const r of rows) {
    const programs = wrapperPrograms(r.convertedText, r.kind, r.slot);
    if (!programs) continue;
    const missing: string[] = [];
    for (const [i, p] of programs.entries()) {
      const script = i === 1;
      const key = `${script}\u0000${p}`;
      if (!checked.has(key)) checked.set(key, findable(p, script, env));
      if (!(await checked.get(key))) missing.push(p);
    }
    wrappers.push({ path: r.path, client: r.client, server: r.server, missing });
  }
  return brokerProblems({ platform: ctx.pathEnv.platform, endpoint, wrappers, cli: process.argv[1] ?? 'mcp-token-rotator' });
}
