/**
 * Broker mode's conversion of one server entry, per client form, and its inverse. Pure:
 * the config text, its format and the entry's place in, the entry's new text out. Only the
 * entry's own span changes; everything else in the file stays byte for byte.
 *
 * Forms (see docs/broker.md):
 * - stdio (`env.CERTORIX_API_TOKEN`): command = node, args = [cli, exec, slot, --state-dir,
 *   dir, --, original command, ...original args]; the token leaves `env`. Portable form (a
 *   project-scoped config, see portableEntry): command = mcp-token-rotator, args = [exec,
 *   slot, --, original command, ...original args]; the wrapper finds the state dir itself.
 *   Another provider's variable (GITHUB_PERSONAL_ACCESS_TOKEN, ...) adds `--env NAME` before
 *   `--`, so the wrapper hands the token over in the entry's own variable. Goose's `cmd`/`envs`
 *   and Zed's older `command: {path, args, env}` are the same thing under other names.
 * - mcp-remote bridge (bearer in args, or `Authorization:${VAR}` with the value in env):
 *   the stdio form too, with the header argument reading `${CERTORIX_API_TOKEN}`, which
 *   mcp-remote expands from its own environment (the wrapper sets it). The bridge is then
 *   restarted by the wrapper on a rotation like any stdio server, daemon or not.
 * - remote, Claude Code: the Authorization header leaves, `headersHelper` comes in.
 * - remote, every other client: the URL points at the daemon's local endpoint and the
 *   Authorization header leaves (only when an endpoint is available; see enable.ts).
 */
import type { FileFormat, KeyPath, TokenSite } from '../../clients/formats.js';
import { TOKEN_ENV } from '../../clients/formats.js';
import { providerModule } from '../../providers/index.js';
import { TOKEN_MARKER, type EntryKind } from '../registry.js';
import { child, getIn, locateEntry, prop, type PArr, type PNode, type PObj, type PProp, type PStr } from './positions.js';
import {
  addProp,
  addPropAfter,
  applySplices,
  ConvertError,
  encodeString,
  inlineObject,
  prependItems,
  removeFirstItems,
  removeProp,
  replaceProp,
  setString,
  type Splice,
} from './ops.js';

export { ConvertError };

/** The command a portable entry runs, found by the client through PATH (package.json's bin). */
export const BIN_NAME = 'mcp-token-rotator';

/**
 * Whether an entry gets the portable form (the bare command and the slot, no path of this
 * user's): entries of project-scoped configs, which teammates share (a file found through
 * `extraConfigs`, any file tracked by git) and Claude Code's `projects.*` entries. The
 * user-level configs of GUI clients keep absolute paths (they start servers with a bare PATH).
 */
export function portableEntry(o: { origin: 'catalog' | 'extra'; gitTracked: boolean; client: string; entryPath: KeyPath }): boolean {
  if (o.origin === 'extra' || o.gitTracked) return true;
  const i = typeof o.entryPath[0] === 'number' ? 1 : 0;
  return o.client === 'claude-code' && o.entryPath[i] === 'projects';
}

/** What a converted entry needs to say, decided by enable.ts (paths, slot, endpoint). */
export interface BrokerTarget {
  /** The portable form: `mcp-token-rotator exec <slot> -- ...` from PATH, no node, CLI or state-dir path. */
  portable?: boolean;
  /** Absolute node (process.execPath). */
  node: string;
  /** Absolute built CLI (dist/src/cli/main.js). */
  cli: string;
  stateDir: string;
  slot: string;
  /** The local endpoint's origin (`http://127.0.0.1:<port>`) and this entry's route secret; null when no endpoint is available. */
  endpoint: { origin: string; routeSecret: string } | null;
  /** Why there is no endpoint, for the plaintext reason. */
  endpointMissing?: string;
  /** The headersHelper command line (quoted for a shell), for Claude Code remote entries. */
  headersHelper: string;
}

export interface EntryInput {
  text: string;
  format: FileFormat;
  client: string;
  server: string;
  entryPath: KeyPath;
  /** The Certorix token sites inside this entry (from locateTokens). */
  sites: TokenSite[];
}

export type EntryPlan =
  | {
      mode: EntryKind;
      start: number;
      end: number;
      /** The entry's text before, with the token replaced by TOKEN_MARKER. */
      originalText: string;
      convertedText: string;
      token: string;
      upstreamUrl: string | null;
      routeSecret: string | null;
    }
  | { mode: 'plaintext'; reason: string; token: string };

const URL_KEYS = ['url', 'serverUrl', 'httpUrl', 'uri'] as const;
const HEADER_ROOTS = new Set(['headers', 'http_headers', 'requestOptions']);
export const TOKEN_REF = '${' + TOKEN_ENV + '}';

/**
 * The key path of the server entry a token site belongs to: the servers container (with
 * a YAML document index or a Claude Code project in front) plus the entry's own key.
 */
export function entryPathOf(keyPath: KeyPath): KeyPath {
  let i = typeof keyPath[0] === 'number' ? 1 : 0;
  if (keyPath[i] === 'projects') i += 3;
  else if (keyPath[i] === 'mcp' && keyPath[i + 1] === 'servers') i += 2;
  else i += 1;
  return keyPath.slice(0, i + 1);
}

/** A URL path segment from a server name: lowercase letters, digits, `-`, `_`, `.`. */
export function slugOf(server: string): string {
  const s = server.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 40);
  return s === '' ? 'server' : s;
}

export function endpointUrl(origin: string, routeSecret: string, server: string): string {
  return `${origin}/${routeSecret}/${slugOf(server)}`;
}

function plain(reason: string, token: string): EntryPlan {
  return { mode: 'plaintext', reason, token };
}

/** Plans the conversion of one entry, or says why it stays plaintext. Throws nothing. */
export function planEntry(input: EntryInput, target: BrokerTarget): EntryPlan {
  const token = input.sites[0]?.token ?? '';
  try {
    return planEntryUnsafe(input, target, token);
  } catch (e) {
    return plain(`this entry's layout cannot be converted safely (${(e as Error).message})`, token);
  }
}

function planEntryUnsafe(input: EntryInput, target: BrokerTarget, token: string): EntryPlan {
  const { text, format, client } = input;
  if (format === 'shell' || format === 'fish' || format === 'dotenv') {
    return plain('a shell start-up or .env file sets the variable for every program the shell starts; there is no command to run through the broker', token);
  }
  if (input.sites.some((s) => s.token !== token)) return plain('the entry holds two different tokens', token);
  const loc = locateEntry(text, format, input.entryPath);
  if (!loc) return plain('the entry could not be located as one span of the file', token);
  const entryText = text.slice(loc.start, loc.end);
  // Every site's literal must hold the token as written, so the original can be restored by substitution.
  for (const s of input.sites) if (!text.slice(s.start, s.end).includes(token)) return plain('the token is written with escapes here', token);
  const entry = loc.node;
  const rel = (s: TokenSite) => s.keyPath.slice(input.entryPath.length);
  const headerSites = input.sites.filter((s) => s.kind === 'header' && HEADER_ROOTS.has(String(rel(s)[0])));
  const bridgeSites = input.sites.filter((s) => s.kind === 'args' || (s.kind === 'header' && !HEADER_ROOTS.has(String(rel(s)[0]))));
  const envSites = input.sites.filter((s) => s.kind === 'env');

  let splices: Splice[];
  let mode: EntryKind;
  let upstreamUrl: string | null = null;
  let routeSecret: string | null = null;
  if (headerSites.length > 0) {
    if (bridgeSites.length || envSites.length) return plain('the entry mixes a remote header with other token places', token);
    const urlProp = URL_KEYS.map((k) => prop(entry, k)).find((p) => p?.value.t === 'str');
    if (!urlProp) return plain('the remote entry has no url', token);
    if (client === 'claude-code') {
      mode = 'headers-helper';
      splices = removeHeaders(text, format, entry, headerSites.map(rel), { key: 'headersHelper', value: encodeString(format, target.headersHelper) });
    } else {
      if (!target.endpoint) return plain(target.endpointMissing ?? 'no local endpoint is available', token);
      mode = 'endpoint';
      upstreamUrl = (urlProp.value as PStr).value;
      routeSecret = target.endpoint.routeSecret;
      splices = [setString(format, urlProp.value as PStr, endpointUrl(target.endpoint.origin, routeSecret, input.server)), ...removeHeaders(text, format, entry, headerSites.map(rel), null)];
    }
  } else {
    if (bridgeSites.length && client === 'claude-code') {
      return plain('Claude Code expands ${VAR} in args itself; make this an "http" entry (it gets a headersHelper) and run broker enable again', token);
    }
    mode = 'exec';
    splices = execSplices(text, format, entry, target, envSites.map(rel), bridgeSites, input.entryPath, token, handOverVariable(envSites, bridgeSites));
  }
  const next = applySplices(text, splices);
  const convertedText = next.slice(loc.start, next.length - (text.length - loc.end));
  if (convertedText.includes(token)) return plain('the token also appears elsewhere in this entry (another key or a comment)', token);
  const originalText = entryText.split(token).join(TOKEN_MARKER);
  return { mode, start: loc.start, end: loc.end, originalText, convertedText, token, upstreamUrl, routeSecret };
}

/** Where the command, its args and its env live: the entry itself, or Zed's older `command` object. */
interface CommandHolder {
  holder: PObj;
  cmd: PProp;
  args: PProp | undefined;
}

function commandHolder(entry: PObj): CommandHolder | string {
  const c = prop(entry, 'command') ?? prop(entry, 'cmd');
  if (c?.value.t === 'obj') {
    const p = prop(c.value, 'path');
    if (p?.value.t !== 'str') return 'the command object has no path string';
    return { holder: c.value, cmd: p, args: prop(c.value, 'args') };
  }
  if (c?.value.t !== 'str') return 'the entry has no command string to run through the wrapper';
  return { holder: entry, cmd: c, args: prop(entry, 'args') };
}

/**
 * The variable the wrapper hands the token over in: the entry's own (its env site's name),
 * else, for a bridge, its provider's. A Certorix entry's is CERTORIX_API_TOKEN, the
 * wrapper's default, so its converted form carries no `--env` (as before providers).
 */
export function handOverVariable(envSites: TokenSite[], bridge: TokenSite[]): string {
  const own = envSites.find((s) => s.envVar !== undefined)?.envVar;
  if (own) return own;
  const p = providerModule(bridge[0]?.provider ?? 'certorix');
  return p?.envVar ?? TOKEN_ENV;
}

function execSplices(text: string, format: FileFormat, entry: PObj, t: BrokerTarget, envRels: KeyPath[], bridge: TokenSite[], entryPath: KeyPath, token: string, envVar: string = TOKEN_ENV): Splice[] {
  const h = commandHolder(entry);
  if (typeof h === 'string') throw new ConvertError(h);
  const origCmd = (h.cmd.value as PStr).value;
  const envOpt = envVar !== TOKEN_ENV ? ['--env', envVar] : [];
  const prefix = t.portable ? ['exec', t.slot, ...envOpt, '--', origCmd] : [t.cli, 'exec', t.slot, '--state-dir', t.stateDir, ...envOpt, '--', origCmd];
  const tokenRef = '${' + envVar + '}';
  const out: Splice[] = [setString(format, h.cmd.value as PStr, t.portable ? BIN_NAME : t.node)];
  if (h.args?.value.t === 'arr') out.push(prependItems(text, format, h.args.value, prefix));
  else if (h.args) throw new ConvertError('args is not a list');
  else out.push(addPropAfter(text, format, h.holder, h.cmd, 'args', `[${prefix.map((v) => encodeString(format, v)).join(', ')}]`));
  for (const r of envRels) out.push(removeAt(text, format, entry, r));
  for (const s of bridge) {
    const r = s.keyPath.slice(entryPath.length);
    const node = getIn(entry, r);
    if (node?.t !== 'str') throw new ConvertError('bridge header not found');
    if (s.kind === 'args') {
      out.push(setString(format, node, node.value.slice(0, s.tokenStart) + tokenRef + node.value.slice(s.tokenEnd)));
      continue;
    }
    // `Authorization:${VAR}` with the bearer in env VAR: the argument gets the value itself
    // (token replaced by the wrapper's variable) and VAR leaves env.
    const name = String(r[r.length - 1]);
    const ref = '${' + name + '}';
    const expanded = node.value.slice(0, s.tokenStart) + tokenRef + node.value.slice(s.tokenEnd);
    const args = h.args?.value;
    const users = args?.t === 'arr' ? args.items.filter((a): a is PStr => a.t === 'str' && a.value.includes(ref)) : [];
    if (!users.length) throw new ConvertError('bridge variable not used in args');
    for (const a of users) out.push(setString(format, a, a.value.split(ref).join(expanded)));
    out.push(removeAt(text, format, entry, r));
  }
  if (!token) throw new ConvertError('no token');
  return out;
}

/** Removes the key at `rel` under `entry`, giving a YAML block map that would be left empty `{}`. */
function removeAt(text: string, format: FileFormat, entry: PObj, rel: KeyPath): Splice {
  const parentPath = rel.slice(0, -1);
  const parent = getIn(entry, parentPath);
  const key = String(rel[rel.length - 1]);
  if (parent?.t !== 'obj') throw new ConvertError('container missing');
  const p = prop(parent, key);
  if (!p) throw new ConvertError('key missing');
  const ownerParent = parentPath.length ? getIn(entry, parentPath.slice(0, -1)) : undefined;
  const owner = parentPath.length ? prop(ownerParent, String(parentPath[parentPath.length - 1])) : undefined;
  return removeProp(text, format, parent, p, owner);
}

/**
 * Removes Authorization header(s); a headers object left empty goes entirely. With
 * `replacement`, that key takes the headers' place (or follows them when others stay).
 */
function removeHeaders(text: string, format: FileFormat, entry: PObj, rels: KeyPath[], replacement: { key: string; value: string } | null): Splice[] {
  const out: Splice[] = [];
  let placed = false;
  const byContainer = new Map<string, KeyPath[]>();
  for (const r of rels) {
    const k = JSON.stringify(r.slice(0, -1));
    byContainer.set(k, [...(byContainer.get(k) ?? []), r]);
  }
  for (const [k, list] of byContainer) {
    const cPath = JSON.parse(k) as KeyPath;
    const container = getIn(entry, cPath);
    if (container?.t !== 'obj') throw new ConvertError('headers missing');
    const cParent = getIn(entry, cPath.slice(0, -1)) as PObj;
    const cProp = prop(cParent, String(cPath[cPath.length - 1])) as PProp;
    if (container.props.length === list.length) {
      // Nothing else in it: the headers key goes (or becomes the replacement, in place).
      if (replacement && !placed && cParent === entry) {
        out.push(replaceProp(format, entry, cProp, replacement.key, replacement.value, text));
        placed = true;
      } else out.push(removeAt(text, format, entry, cPath));
    } else {
      for (const r of list) out.push(removeAt(text, format, entry, r));
      if (replacement && !placed && cParent === entry) {
        out.push(addPropAfter(text, format, entry, cProp, replacement.key, replacement.value));
        placed = true;
      }
    }
  }
  if (replacement && !placed) {
    const last = entry.props[entry.props.length - 1];
    if (!last) throw new ConvertError('empty entry');
    out.push(addPropAfter(text, format, entry, last, replacement.key, replacement.value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The inverse: disable.

/** What disable needs of a converted entry (a registry row's fields). */
export interface ConvertedEntry {
  entryPath: KeyPath;
  kind: EntryKind;
  slot: string;
  originalText: string;
  convertedText: string;
  upstreamUrl: string | null;
}

export interface RestoreInput extends ConvertedEntry {
  text: string;
  format: FileFormat;
  client: string;
  /** The current token (from the store). */
  token: string;
}

export interface RestorePlan {
  start: number;
  end: number;
  restoredText: string;
  /** True when the entry was as enable left it and the original came back byte for byte. */
  exact: boolean;
}

/** A placeholder the caller swaps for the token with the byte-exact replacer (which escapes as needed). */
export const RESTORE_PLACEHOLDER = 'mtrRESTOREPLACEHOLDER0123456789abcdef';

/**
 * The entry back in plaintext form. The original text when the entry is as enable wrote
 * it; otherwise (the user edited it since) the same edits undone on the current text.
 * The token comes back as RESTORE_PLACEHOLDER; the caller puts the real one in with
 * replaceToken, which escapes it for the literal and verifies the result.
 */
export function restoreEntry(input: RestoreInput): RestorePlan {
  const loc = locateEntry(input.text, input.format, input.entryPath);
  if (!loc) throw new ConvertError('the converted entry is no longer in the file');
  const cur = input.text.slice(loc.start, loc.end);
  if (cur === input.convertedText) {
    return { start: loc.start, end: loc.end, restoredText: input.originalText.split(TOKEN_MARKER).join(RESTORE_PLACEHOLDER), exact: true };
  }
  const splices = semanticRestore(input, loc.node);
  const next = applySplices(input.text, splices);
  return { start: loc.start, end: loc.end, restoredText: next.slice(loc.start, next.length - (input.text.length - loc.end)), exact: false };
}

function semanticRestore(input: RestoreInput, entry: PObj): Splice[] {
  const { text, format } = input;
  const tok = encodeString(format, RESTORE_PLACEHOLDER);
  const bearer = encodeString(format, `Bearer ${RESTORE_PLACEHOLDER}`);
  if (input.kind === 'exec') {
    const h = commandHolder(entry);
    if (typeof h === 'string') throw new ConvertError(h);
    const args = h.args?.value;
    const items = args?.t === 'arr' ? args.items : [];
    const strAt = (i: number) => (items[i]?.t === 'str' ? (items[i] as PStr).value : undefined);
    // [cli, exec, slot, --state-dir, dir, (--env, NAME,) --, cmd, ...] or, portable,
    // [exec, slot, (--env, NAME,) --, cmd, ...]: the wrapper's options (each with a value) up
    // to "--", then the original command. `--env` names the variable the token goes back in.
    const e = strAt(0) === 'exec' ? 0 : 1;
    let dash = e + 2;
    let varName = TOKEN_ENV;
    while (strAt(dash)?.startsWith('--') && strAt(dash) !== '--' && strAt(dash + 1) !== undefined) {
      if (strAt(dash) === '--env') varName = strAt(dash + 1) as string;
      dash += 2;
    }
    if (strAt(e) !== 'exec' || strAt(e + 1) !== input.slot || strAt(dash) !== '--' || strAt(dash + 1) === undefined) {
      throw new ConvertError('the entry no longer runs through "exec"; edit it by hand');
    }
    const ref = '${' + varName + '}';
    const n = dash + 2;
    const out: Splice[] = [setString(format, h.cmd.value as PStr, strAt(dash + 1) as string)];
    const arr = args as PArr;
    if (arr.block && items.length === n) out.push(removeAt(text, format, h.holder, ['args']));
    else out.push(removeFirstItems(text, arr, n));
    const bridgeArgs = items.slice(n).filter((a): a is PStr => a.t === 'str' && a.value.includes(ref));
    for (const a of bridgeArgs) out.push(setString(format, a, a.value.split(ref).join(RESTORE_PLACEHOLDER)));
    if (!bridgeArgs.length) {
      const envKey = prop(h.holder, 'env') ? 'env' : prop(h.holder, 'envs') ? 'envs' : entry !== h.holder ? 'env' : prop(entry, 'cmd') ? 'envs' : 'env';
      const env = child(h.holder, envKey);
      if (env?.t === 'obj') out.push(addProp(text, format, env, varName, tok));
      else if (env) throw new ConvertError('env is not a map');
      else out.push(addProp(text, format, h.holder, envKey, inlineObject(format, [[varName, RESTORE_PLACEHOLDER]])));
    }
    return out;
  }
  if (input.kind === 'headers-helper') {
    const helper = prop(entry, 'headersHelper');
    if (!helper) throw new ConvertError('the entry has no headersHelper any more; edit it by hand');
    const headers = child(entry, 'headers');
    if (headers?.t === 'obj') return [removeAt(text, format, entry, ['headersHelper']), addProp(text, format, headers, 'Authorization', bearer)];
    return [replaceProp(format, entry, helper, 'headers', inlineObject(format, [['Authorization', `Bearer ${RESTORE_PLACEHOLDER}`]]), text)];
  }
  // endpoint
  const urlProp = URL_KEYS.map((k) => prop(entry, k)).find((p) => p?.value.t === 'str');
  if (!urlProp || !input.upstreamUrl) throw new ConvertError('the entry has no url any more; edit it by hand');
  const out: Splice[] = [setString(format, urlProp.value as PStr, input.upstreamUrl)];
  const containers: KeyPath[] = [['headers'], ['http_headers'], ['requestOptions', 'headers']];
  const existing = containers.map((c) => ({ c, node: getIn(entry, c) })).find((x) => x.node?.t === 'obj');
  if (existing) out.push(addProp(text, format, existing.node as PObj, 'Authorization', bearer));
  else {
    const key = format === 'toml' ? 'http_headers' : 'headers';
    out.push(addPropAfter(text, format, entry, urlProp, key, inlineObject(format, [['Authorization', `Bearer ${RESTORE_PLACEHOLDER}`]])));
  }
  return out;
}

/** Whether a node is the string `value` (tests and status use it on converted entries). */
export function isStr(n: PNode | undefined, value: string): boolean {
  return n?.t === 'str' && n.value === value;
}

// ---------------------------------------------------------------------------------------
// Heal: is a restored plaintext entry still the one that was converted?

/** The keys that decide what a server entry runs and where its token goes. */
const LAUNCH_KEYS = ['command', 'cmd', 'args', 'env', 'envs', 'cwd', ...URL_KEYS] as const;

function nodeValue(text: string, n: PNode | undefined): unknown {
  if (!n) return undefined;
  switch (n.t) {
    case 'str':
      return n.value;
    case 'arr':
      return n.items.map((i) => nodeValue(text, i));
    case 'obj':
      return Object.fromEntries(n.props.map((p) => [p.key, nodeValue(text, p.value)]));
    case 'other':
      return text.slice(n.start, n.end).trim();
  }
}

/** What an entry runs and where it sends its token: command, args, env, cwd, URL (Zed's `command` object included). */
export function entryLaunch(text: string, entry: PObj): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of LAUNCH_KEYS) {
    const v = nodeValue(text, child(entry, k));
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * Whether the entry now at `[start, end)` of `text` (its token written as TOKEN_MARKER in
 * `nowText`) runs the same command with the same args, env and cwd, or goes to the same
 * URL, as the recorded original (`originalText`, token as TOKEN_MARKER). Both are read in
 * place of the entry in the same document, so any client's re-formatting compares equal.
 * Returns null when the same, else what differs (never a token: both sides carry the marker).
 */
export function launchChange(text: string, format: FileFormat, entryPath: KeyPath, start: number, end: number, nowText: string, originalText: string): string | null {
  const read = (span: string) => {
    const doc = text.slice(0, start) + span.split(TOKEN_MARKER).join(RESTORE_PLACEHOLDER) + text.slice(end);
    const loc = locateEntry(doc, format, entryPath);
    return loc ? { launch: entryLaunch(doc, loc.node), doc } : null;
  };
  const now = read(nowText);
  const was = read(originalText);
  if (!now) return 'the restored entry cannot be read';
  if (!was) return 'the converted entry\'s original cannot be read in place of it';
  const keys = [...new Set([...Object.keys(now.launch), ...Object.keys(was.launch)])].filter((k) => JSON.stringify(now.launch[k]) !== JSON.stringify(was.launch[k]));
  if (!keys.length) return null;
  const cmd = (l: Record<string, unknown>) => {
    const c = l.command ?? l.cmd;
    const s = typeof c === 'object' && c !== null ? (c as { path?: unknown }).path : c;
    return typeof s === 'string' ? s : null;
  };
  const a = cmd(now.launch);
  const b = cmd(was.launch);
  if (a !== b && a !== null && b !== null) return `it runs "${a}" instead of "${b}"`;
  return `its ${keys.join(', ')} differ${keys.length === 1 ? 's' : ''} from the entry that was converted`;
}
