/**
 * Finds the Certorix tokens held in an MCP client config (or a shell start-up file) and
 * says exactly where their literals lie in the original text, so that edit.ts can splice
 * a new token in without touching any other byte. Pure: text in, result out.
 *
 * Structured formats (JSON, TOML, YAML) are first turned into one small neutral tree
 * (`PNode`, strings carrying the offsets of their literal) so the rules about what counts
 * as a token site are written once, in `findSites`.
 */
import { lineCol, locateJsonTree } from './locate-json.js';
import { locateTomlTree } from './locate-toml.js';
import { locateYamlTrees } from './locate-yaml.js';
import { locateShellText } from './locate-shell.js';
import { locateDefaults, type LocateOptions } from './locate-defaults.js';
import { normalizeHost } from '../providers/certorix/index.js';
import { claimEntry, enabledProviders, shellVariables, type ProviderModule } from '../providers/index.js';
import { CERTORIX_ENV } from '../providers/certorix/index.js';
import type { EntryView } from '../providers/types.js';

export type FileFormat = 'json' | 'jsonc' | 'toml' | 'yaml' | 'shell' | 'fish' | 'dotenv';
export type SiteKind = 'env' | 'header' | 'args' | 'shell';

export interface TokenSite {
  /** Server/extension name; '' for shell/dotenv files. */
  server: string;
  kind: SiteKind;
  /** The provider whose token this is, by the entry that holds it (src/providers/). */
  provider: string;
  /** The variable the token sits in (env and shell sites, and a header read from env): broker mode hands it over there. */
  envVar?: string;
  /** The API base the entry names for itself (GitLab's GITLAB_API_URL), if any. */
  apiUrl?: string;
  /** Path to the string value in the parsed document; for shell/dotenv: [<variable>, <0-based line>]. */
  keyPath: (string | number)[];
  /** [start,end) UTF-16 offsets in the ORIGINAL text of the raw literal holding the value, quotes included. */
  start: number;
  end: number;
  /** The whole decoded string value (e.g. "Bearer abc"). */
  value: string;
  /** Where the token lies inside `value` (decoded offsets). */
  tokenStart: number;
  tokenEnd: number;
  token: string;
}

export interface LocateResult {
  sites: TokenSite[];
  errors: string[];
  warnings: string[];
}

export { setLocateDefaults, type LocateOptions } from './locate-defaults.js';

/**
 * Bounds on what one file may produce: a config has a handful of token sites and a few
 * warnings; thousands mean a hostile or generated file, refused rather than ground through.
 */
export const MAX_SITES = 1_000;
export const MAX_WARNINGS = 20;
/** Array items and header entries looked at in server entries (YAML aliases can share one big list among many). */
const MAX_ENTRY_WORK = 2_000_000;

class LimitError extends Error {}

/** Errors that mean "beyond what a config may be" (a bound of this tool), not a syntax error. */
export function isLimitError(message: string): boolean {
  return /^(?:JSON nested \d+ levels|JSON holds about|more than \d+ token sites|too many server entries|nested too deeply)/.test(message);
}

/** Certorix's variable; generic code asks the providers (src/providers/) instead. */
export const TOKEN_ENV = CERTORIX_ENV;
export { lineCol };

/** Offsets of a string literal in the original text. */
export interface Lit {
  start: number;
  end: number;
}

/**
 * The neutral document tree. `pos` is an offset in the original text, used only to give
 * warnings a line:column (never a value); TOML nodes have none.
 */
export type PNode =
  | { t: 'obj'; entries: Map<string, PNode>; pos?: number }
  | { t: 'arr'; items: PNode[]; pos?: number }
  | { t: 'str'; value: string; lit: Lit | undefined; pos?: number }
  | { t: 'other'; pos?: number };

export type StrNode = Extract<PNode, { t: 'str' }>;
export type KeyPath = (string | number)[];

/** One parsed document of a structured file; `prefix` is prepended to key paths (YAML multi-document files). */
export interface TreeDoc {
  root: PNode;
  prefix: KeyPath;
}

export interface TreeResult {
  docs: TreeDoc[];
  errors: string[];
  warnings: string[];
}

/**
 * One rotation locates the same text several times (scan, preflight, rewrite, the edit's
 * own checks, read-back); for a 10 MB ~/.claude.json each parse costs a few hundred ms.
 * Big texts are memoised briefly: same text and format, same answer (copied, so callers
 * may not share mutable results). Small texts parse faster than they compare.
 */
const MEMO_MIN_LENGTH = 64 * 1024;
const MEMO_ENTRIES = 3;
const MEMO_TTL_MS = 10_000;
const memo: Array<{ format: FileFormat; hosts: string; text: string; result: LocateResult }> = [];
let memoTimer: NodeJS.Timeout | undefined;

function copyResult(r: LocateResult): LocateResult {
  return { sites: r.sites.map((s) => ({ ...s, keyPath: [...s.keyPath] })), errors: [...r.errors], warnings: [...r.warnings] };
}

/**
 * Never throws: whatever a file holds (nesting past the stack, a parser's own failure), it
 * becomes this file's error, so one hostile file cannot stop the others being handled.
 */
export function locateTokens(text: string, format: FileFormat, opts: LocateOptions = locateDefaults()): LocateResult {
  const hosts = normalizeHosts(opts.mcpHosts ?? []);
  const providers = enabledProviders(opts.providers);
  if (text.length < MEMO_MIN_LENGTH) return locateGuarded(text, format, hosts, providers);
  const key = `${hosts.join(',')}|${providers.map((p) => p.name).join(',')}`;
  const hit = memo.find((e) => e.format === format && e.hosts === key && e.text === text);
  if (hit) return copyResult(hit.result);
  const result = locateGuarded(text, format, hosts, providers);
  memo.unshift({ format, hosts: key, text, result: copyResult(result) });
  memo.length = Math.min(memo.length, MEMO_ENTRIES);
  // A long-running daemon must not keep megabytes of config text alive.
  if (memoTimer) clearTimeout(memoTimer);
  memoTimer = setTimeout(() => {
    memo.length = 0;
    memoTimer = undefined;
  }, MEMO_TTL_MS);
  memoTimer.unref?.();
  return result;
}

function locateGuarded(text: string, format: FileFormat, hosts: string[], providers: readonly ProviderModule[]): LocateResult {
  let r: LocateResult;
  try {
    r = locateUncached(text, format, hosts, providers);
  } catch (e) {
    const reason =
      e instanceof LimitError
        ? e.message
        : e instanceof RangeError && /call stack/i.test(e.message)
          ? 'nested too deeply to read'
          : `the parser failed (${e instanceof Error ? e.name : 'error'})`;
    return { sites: [], errors: [reason], warnings: [] };
  }
  if (r.sites.length > MAX_SITES) return { sites: [], errors: [`more than ${MAX_SITES} token sites`], warnings: [] };
  if (r.errors.length > MAX_WARNINGS) r.errors = [...r.errors.slice(0, MAX_WARNINGS), `(${r.errors.length - MAX_WARNINGS} more errors not shown)`];
  if (r.warnings.length > MAX_WARNINGS) {
    r.warnings = [...r.warnings.slice(0, MAX_WARNINGS), `(${r.warnings.length - MAX_WARNINGS} more warnings not shown)`];
  }
  return r;
}

function locateUncached(text: string, format: FileFormat, hosts: string[], providers: readonly ProviderModule[]): LocateResult {
  switch (format) {
    case 'json':
    case 'jsonc':
      return fromTrees(text, locateJsonTree(text), hosts, providers);
    case 'toml':
      return fromTrees(text, locateTomlTree(text), hosts, providers);
    case 'yaml':
      return fromTrees(text, locateYamlTrees(text), hosts, providers);
    case 'shell':
    case 'fish':
    case 'dotenv':
      return locateShellText(text, format, shellVariables(providers));
    default: {
      const never: never = format;
      throw new Error(`unknown config format: ${String(never)}`);
    }
  }
}

function fromTrees(text: string, tree: TreeResult, hosts: string[], providers: readonly ProviderModule[]): LocateResult {
  if (tree.errors.length > 0) return { sites: [], errors: tree.errors, warnings: tree.warnings };
  const sites: TokenSite[] = [];
  const errors: string[] = [];
  const warnings = [...tree.warnings];
  const seen = new Set<string>();
  const budget = { work: MAX_ENTRY_WORK };
  for (const doc of tree.docs) {
    for (const c of findSites(doc.root, doc.prefix, text, warnings, hosts, budget, providers)) {
      const id = JSON.stringify(c.keyPath);
      if (seen.has(id)) continue;
      seen.add(id);
      if (!c.node.lit) {
        // Known to hold a token but not where: editing blind could leave a dead token behind,
        // so the whole file is refused rather than half-handled.
        errors.push('cannot locate the position of a token value (unsupported syntax)');
        continue;
      }
      if (sites.length >= MAX_SITES) throw new LimitError(`more than ${MAX_SITES} token sites`);
      sites.push({
        server: c.server,
        kind: c.kind,
        provider: c.provider,
        ...(c.envVar !== undefined ? { envVar: c.envVar } : {}),
        ...(c.apiUrl !== undefined ? { apiUrl: c.apiUrl } : {}),
        keyPath: c.keyPath,
        start: c.node.lit.start,
        end: c.node.lit.end,
        value: c.node.value,
        tokenStart: c.tokenStart,
        tokenEnd: c.tokenEnd,
        token: c.node.value.slice(c.tokenStart, c.tokenEnd),
      });
    }
  }
  if (errors.length > 0) return { sites: [], errors, warnings };
  sites.sort((a, b) => a.start - b.start || a.end - b.end);
  return { sites, errors: [], warnings };
}

// ---------------------------------------------------------------------------------------
// The rules: which string values in a server entry hold a token, and whose (the providers'
// claims on the entry decide; see src/providers/types.ts).

interface Candidate {
  server: string;
  kind: SiteKind;
  provider: string;
  envVar?: string;
  apiUrl?: string;
  keyPath: KeyPath;
  node: StrNode;
  tokenStart: number;
  tokenEnd: number;
}

const ENV_CONTAINERS: readonly string[][] = [['env'], ['envs'], ['command', 'env']];
const HEADER_CONTAINERS: readonly string[][] = [['headers'], ['http_headers'], ['requestOptions', 'headers']];
const URL_KEYS = ['url', 'serverUrl', 'httpUrl', 'uri'] as const;
const ARGS_PATHS: readonly string[][] = [['args'], ['command', 'args']];
const ROOT_CONTAINERS = ['mcpServers', 'servers', 'context_servers', 'mcp_servers', 'extensions', 'mcp.servers'] as const;

// `d` gives the capture's offsets, so the token's place in the value is exact, not re-searched.
// No two adjacent quantifiers may match the same characters ("\s*(?:--header=)?\s*" did):
// a failing match would then try every split of a long run, quadratic in the value's length.
const BEARER = /^\s*bearer\s+(\S(?:.*\S)?)\s*$/dis;
const ARG_HEADER = /^\s*(?:--header=\s*)?authorization\s*:\s*bearer\s+(\S(?:.*\S)?)\s*$/dis;
const ARG_HEADER_NAME = /^\s*(?:--header=\s*)?authorization\s*:/i;
const VAR_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function findSites(
  root: PNode,
  prefix: KeyPath,
  text: string,
  warnings: string[],
  hosts: readonly string[] = [],
  budget: { work: number } = { work: MAX_ENTRY_WORK },
  providers: readonly ProviderModule[] = enabledProviders(undefined),
): Candidate[] {
  const out: Candidate[] = [];
  if (root.t !== 'obj') return out;
  const containers: { path: KeyPath; node: PNode }[] = [];
  for (const key of ROOT_CONTAINERS) {
    const node = root.entries.get(key);
    if (node) containers.push({ path: [key], node });
  }
  const mcp = root.entries.get('mcp');
  const mcpServers = mcp?.t === 'obj' ? mcp.entries.get('servers') : undefined;
  if (mcpServers) containers.push({ path: ['mcp', 'servers'], node: mcpServers });
  const projects = root.entries.get('projects');
  if (projects?.t === 'obj') {
    for (const [name, project] of projects.entries) {
      const node = project.t === 'obj' ? project.entries.get('mcpServers') : undefined;
      if (node) containers.push({ path: ['projects', name, 'mcpServers'], node });
    }
  }
  for (const c of containers) {
    for (const e of entriesOf(c.node)) {
      entrySites(e.server, [...prefix, ...c.path, e.key], e.node, { text, warnings, hosts, budget, providers }, out);
    }
  }
  return out;
}

function entriesOf(container: PNode): { server: string; key: string | number; node: PNode }[] {
  if (container.t === 'obj') return [...container.entries].map(([key, node]) => ({ server: key, key, node }));
  if (container.t === 'arr') {
    return container.items.map((node, i) => {
      const name = node.t === 'obj' ? node.entries.get('name') : undefined;
      return { server: name?.t === 'str' ? name.value : String(i), key: i, node };
    });
  }
  return [];
}

function getPath(node: PNode | undefined, path: readonly string[]): PNode | undefined {
  let cur = node;
  for (const key of path) {
    if (cur?.t !== 'obj') return undefined;
    cur = cur.entries.get(key);
  }
  return cur;
}

/** A value that is a reference (`${input:x}`, `${env:X}`, `${{ secrets.X }}`) or blank holds no token. */
export function isTokenLike(value: string): boolean {
  const v = value.trim();
  if (v === '' || v.includes('${')) return false;
  // Clients expand these from the environment (Gemini CLI "$VAR", Windows "%VAR%",
  // "{env:VAR}" and "{{ VAR }}" templates): a reference, not a token to rotate.
  return !/^\$[A-Za-z_][A-Za-z0-9_]*$/.test(v) && !/^%[A-Za-z_][A-Za-z0-9_]*%$/.test(v) && !/^\{env:[^}]+\}$/.test(v) && !/^\{\{.*\}\}$/.test(v);
}

export { normalizeHost, isCertorixUrl } from '../providers/certorix/index.js';

function normalizeHosts(hosts: readonly string[]): string[] {
  return [...new Set(hosts.map(normalizeHost).filter((h) => h !== ''))].sort();
}

const NAMES_MCP_REMOTE = (v: string | null): boolean => v !== null && v.includes('mcp-remote') && !/^\s*https?:\/\//i.test(v);

/**
 * The URL an mcp-remote bridge connects to, or null when the entry is no mcp-remote bridge.
 * mcp-remote takes `--header <value>` pairs out of its argv and then reads the server URL
 * from its first argument: so, after the argument naming mcp-remote (`npx -y mcp-remote@1
 * URL`, `npx -p mcp-remote mcp-remote URL`) or, when the command itself is mcp-remote,
 * from the start, the first argument that is not a `--header` pair. Pure.
 */
export function mcpRemoteUrl(command: string | null, args: ReadonlyArray<string | null>): string | null {
  let i: number;
  if (NAMES_MCP_REMOTE(command) && !args.some(NAMES_MCP_REMOTE)) i = 0;
  else {
    const m = args.findIndex(NAMES_MCP_REMOTE);
    if (m < 0) return null;
    i = m + 1;
    while (i < args.length && NAMES_MCP_REMOTE(args[i] ?? null)) i++;
  }
  while (i < args.length && args[i] === '--header') i += 2;
  const url = args[i];
  return typeof url === 'string' ? url.trim() : null;
}

/** Whether `s` ends, before `end` and ignoring whitespace, with "bearer" (any case); no slicing, so linear overall. */
function bearerEndsAt(s: string, end: number): boolean {
  let i = end;
  while (i > 0 && /\s/.test(s[i - 1] ?? '')) i--;
  return i >= 6 && s.slice(i - 6, i).toLowerCase() === 'bearer';
}

function trimmedRange(value: string): [number, number] {
  const start = value.length - value.trimStart().length;
  return [start, value.trimEnd().length];
}

function captureRange(re: RegExp, value: string): [number, number] | undefined {
  const m = re.exec(value);
  const idx = m?.indices?.[1];
  return idx ? [idx[0], idx[1]] : undefined;
}

interface EntryCtx {
  text: string;
  warnings: string[];
  hosts: readonly string[];
  budget: { work: number };
  providers: readonly ProviderModule[];
}

/** What looking at a string costs: aliased values are looked at once per entry that shares them. */
function cost(node: PNode): number {
  return node.t === 'str' ? 1 + (node.value.length >> 6) : 1;
}

function spend(budget: { work: number }, n: number): void {
  budget.work -= n;
  if (budget.work < 0) throw new LimitError('too many server entries and arguments to search (YAML aliases?)');
}

/**
 * The entry as the providers see it: command, args, image, url, and the env of every env
 * container (a non-string value as '', so a provider still claims the name and the
 * locator can warn about it).
 */
function entryView(server: string, entry: Extract<PNode, { t: 'obj' }>, url: string | undefined): EntryView {
  const str = (n: PNode | undefined): string | undefined => (n?.t === 'str' ? n.value : undefined);
  const env = new Map<string, string>();
  for (const envPath of ENV_CONTAINERS) {
    const e = getPath(entry, envPath);
    if (e?.t !== 'obj') continue;
    for (const [k, v] of e.entries) if (!env.has(k)) env.set(k, v.t === 'str' ? v.value : '');
  }
  const args: string[] = [];
  for (const argsPath of ARGS_PATHS) {
    const a = getPath(entry, argsPath);
    if (a?.t === 'arr') for (const n of a.items) if (n.t === 'str') args.push(n.value);
  }
  const command = str(entry.entries.get('command')) ?? str(getPath(entry, ['command', 'path']));
  const image = str(entry.entries.get('image'));
  return { kind: 'mcp', server, args, env, ...(command !== undefined ? { command } : {}), ...(image !== undefined ? { image } : {}), ...(url !== undefined ? { url } : {}) };
}

function entrySites(server: string, path: KeyPath, entry: PNode, ctx: EntryCtx, out: Candidate[]): void {
  const { text, warnings, hosts, budget, providers } = ctx;
  if (entry.t !== 'obj') return;
  spend(budget, 1);
  const url = URL_KEYS.map((k) => entry.entries.get(k)).find((n): n is StrNode => n?.t === 'str');
  const view = entryView(server, entry, url?.value);
  const claims = claimEntry(view, providers, { mcpHosts: hosts });
  const apiUrlOf = (provider: string): string | undefined => claims.apiUrls.get(provider as never);
  const push = (provider: string, kind: SiteKind, keyPath: KeyPath, node: StrNode, range: [number, number], envVar?: string): void => {
    // "Bearer $TOKEN" and the like name a variable; only a literal token is ours to rotate.
    if (!isTokenLike(node.value.slice(range[0], range[1]))) return;
    const apiUrl = apiUrlOf(provider);
    out.push({ server, kind, provider, keyPath, node, tokenStart: range[0], tokenEnd: range[1], ...(envVar !== undefined ? { envVar } : {}), ...(apiUrl !== undefined ? { apiUrl } : {}) });
  };

  // 1. env: the variables a provider claims in this entry.
  for (const envPath of ENV_CONTAINERS) {
    const env = getPath(entry, envPath);
    if (env?.t !== 'obj') continue;
    for (const [name, provider] of claims.env) {
      const v = env.entries.get(name);
      if (!v) continue;
      spend(budget, cost(v));
      if (v.t !== 'str') {
        warnings.push(`${name} value${where(text, v.pos)} is not a string; left alone`);
        continue;
      }
      if (isTokenLike(v.value)) push(provider, 'env', [...path, ...envPath, name], v, trimmedRange(v.value), name);
    }
  }

  // 2. headers, only towards a provider's host: a bearer for another host is someone else's secret.
  if (url && claims.bearer !== undefined) {
    const provider = claims.bearer;
    for (const hp of HEADER_CONTAINERS) {
      const headers = getPath(entry, hp);
      if (headers?.t !== 'obj') continue;
      let n = 0;
      for (const v of headers.entries.values()) n += cost(v);
      spend(budget, n);
      for (const [name, v] of headers.entries) {
        if (name.toLowerCase() !== 'authorization' || v.t !== 'str' || !isTokenLike(v.value)) continue;
        const range = captureRange(BEARER, v.value);
        if (range) push(provider, 'header', [...path, ...hp, name], v, range);
      }
    }
  }

  // 3. mcp-remote bridge: the bearer travels in argv.
  const command = entry.entries.get('command');
  for (const argsPath of ARGS_PATHS) {
    const args = getPath(entry, argsPath);
    if (args?.t !== 'arr') continue;
    spend(budget, args.items.reduce((n, a) => n + cost(a), 0));
    // Only the URL mcp-remote connects to decides: a provider's URL elsewhere in argv (another
    // option's value) must not make a bridge to another host a token to rotate and convert.
    const target = mcpRemoteUrl(command?.t === 'str' ? command.value : null, args.items.map((n) => (n.t === 'str' ? n.value : null)));
    const provider = target === null ? undefined : bearerProvider(target);
    if (provider === undefined) continue;
    args.items.forEach((arg, i) => {
      if (arg.t !== 'str') return;
      if (!arg.value.includes('${')) {
        const range = captureRange(ARG_HEADER, arg.value);
        if (range) push(provider, 'args', [...path, ...argsPath, i], arg, range);
        return;
      }
      if (!ARG_HEADER_NAME.test(arg.value)) return;
      // mcp-remote's documented work-around for clients that mangle spaces in argv:
      // "Authorization:${AUTH_HEADER}" with the bearer in the entry's env.
      for (const m of arg.value.matchAll(VAR_REF)) {
        const name = m[1] ?? '';
        const bearerBefore = bearerEndsAt(arg.value, m.index ?? 0);
        for (const envPath of ENV_CONTAINERS) {
          const env = getPath(entry, envPath);
          const v = env?.t === 'obj' ? env.entries.get(name) : undefined;
          if (v?.t !== 'str') continue;
          spend(budget, cost(v));
          if (!isTokenLike(v.value)) continue;
          let range: [number, number] | undefined;
          if (bearerBefore) range = trimmedRange(v.value);
          else range = captureRange(BEARER, v.value) ?? (/^\s*\S+\s*$/.test(v.value) ? trimmedRange(v.value) : undefined);
          if (range) push(provider, 'header', [...path, ...envPath, name], v, range);
        }
      }
    });
  }

  /** Whose bearer a URL in a bridge's argv takes: the provider that claims the entry with that URL. */
  function bearerProvider(value: string): string | undefined {
    if (!/^https?:\/\//i.test(value.trim())) return undefined;
    return claimEntry({ ...view, url: value }, providers, { mcpHosts: hosts }).bearer;
  }
}

function where(text: string, pos: number | undefined): string {
  return pos === undefined ? '' : ` at ${lineCol(text, pos)}`;
}
