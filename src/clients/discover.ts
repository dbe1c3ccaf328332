import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ConfigFileError } from '../errors.js';
import { expandHome, type PathEnv } from '../paths.js';
import { CATALOG, clientForProjectPath, clientById, formatForPath, type ClientId, type ClientSpec } from './catalog.js';
import { isLimitError, locateTokens, type FileFormat, type TokenSite } from './formats.js';

export interface ConfigCandidate {
  /** The path as the user knows it (a symlink stays a symlink). */
  path: string;
  client: ClientId;
  format: FileFormat;
  /** Where it came from: the catalog, or an extraConfigs pattern. */
  origin: 'catalog' | 'extra';
}

export interface DiscoverOptions {
  pathEnv: PathEnv;
  extraConfigs: string[];
  disableClients?: string[];
}

/**
 * Every config file that exists on this machine: the catalog's paths for this OS plus
 * the extraConfigs globs. Files reached twice (a symlinked dotfile) are listed once.
 */
export async function discoverConfigs(opts: DiscoverOptions): Promise<ConfigCandidate[]> {
  const disabled = new Set(opts.disableClients ?? []);
  const wanted: ConfigCandidate[] = [];
  for (const spec of CATALOG) {
    if (disabled.has(spec.id)) continue;
    // Shell start-up files differ in syntax by shell (config.fish is not POSIX).
    for (const p of spec.paths(opts.pathEnv)) wanted.push({ path: p, client: spec.id, format: spec.id === 'shell' ? formatForPath(p) : spec.format, origin: 'catalog' });
  }
  if (opts.extraConfigs.length) {
    for (const p of await expandGlobs(opts.extraConfigs, opts.pathEnv.home)) {
      wanted.push({ path: p, client: clientForProjectPath(p), format: formatForPath(p), origin: 'extra' });
    }
  }
  const seen = new Set<string>();
  const out: ConfigCandidate[] = [];
  await Promise.all(
    wanted.map(async (c, i) => {
      // lstat first: a dangling or looping symlink is still a config the user should hear about.
      const exists = await lstat(c.path).then(
        () => true,
        () => false,
      );
      if (exists) out[i] = c;
    }),
  );
  const result: ConfigCandidate[] = [];
  for (const c of out) {
    if (!c) continue;
    const key = await realpath(c.path).catch(() => path.resolve(c.path));
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(c);
  }
  return result;
}

export async function expandGlobs(patterns: string[], home: string): Promise<string[]> {
  const { glob } = await import('tinyglobby');
  const expanded = patterns.map((p) => expandHome(p, home));
  const literal = expanded.filter((p) => !/[*?[\]{}]/.test(p));
  const globs = expanded.filter((p) => /[*?[\]{}]/.test(p));
  const found = globs.length
    ? await glob(globs, { absolute: true, dot: true, onlyFiles: false, followSymbolicLinks: true, expandDirectories: false, cwd: home })
    : [];
  return [...new Set([...literal.map((p) => path.resolve(home, p)), ...found.map((p) => path.resolve(p))])].sort();
}

export interface ConfigSnapshot {
  path: string;
  /** The file really written: the symlink's target. */
  realPath: string;
  text: string;
  bytes: Buffer;
  stat: Stats;
}

/** Largest config we will read at all; a 10 MB ~/.claude.json is real, 64 MB is not. */
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/**
 * Largest config of a kind we will parse. Claude Code's ~/.claude.json keeps history and
 * grows to megabytes; every other config is a few KB, and a 10 MB one is a mistake or an
 * attack (parsing cost memory in proportion). The yaml parser is the slowest by far
 * (about 1 s per 100 KB on a busy machine), so YAML gets the tightest bound.
 */
export function maxConfigBytes(client: ClientId, format: FileFormat): number {
  if (client === 'claude-code') return MAX_CONFIG_BYTES;
  if (format === 'yaml') return 256 * 1024;
  return 4 * 1024 * 1024;
}

function sizeText(bytes: number): string {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}

/** A config whose bytes are not UTF-8: refused, but its bytes are kept so a scan can tell whether it holds a token. */
export class NotUtf8Error extends ConfigFileError {
  constructor(
    file: string,
    /** A lossy decode, for a "does it contain this token" check only; never written back. */
    readonly lossy: ConfigSnapshot,
  ) {
    super('E_CONFIG_PARSE', file, `${file} is not valid UTF-8.`, 'Re-save it as UTF-8; it is left alone until then.');
    this.name = 'NotUtf8Error';
  }
}

/** Reads a config through symlinks, refusing what we could not rewrite byte for byte. */
export async function readConfigFile(p: string): Promise<ConfigSnapshot> {
  let realPath: string;
  try {
    realPath = await realpath(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new ConfigFileError('E_CONFIG_READ', p, `${p} is a symlink loop.`, `Point the link at a real file (ls -l "${p}").`, e);
    if (code === 'ENOENT') throw new ConfigFileError('E_CONFIG_READ', p, `${p} does not exist (or is a dangling symlink).`, 'Fix or remove the link, then run "mcp-token-rotator scan".', e);
    throw new ConfigFileError('E_CONFIG_READ', p, `Cannot resolve ${p} (${code}).`, 'Check the path and its permissions.', e);
  }
  let st: Stats;
  try {
    st = await stat(realPath);
  } catch (e) {
    throw new ConfigFileError('E_CONFIG_READ', p, `Cannot stat ${p} (${(e as NodeJS.ErrnoException).code}).`, 'Check its permissions.', e);
  }
  if (!st.isFile()) {
    throw new ConfigFileError('E_CONFIG_READ', p, `${p} is not a regular file (it is a ${st.isDirectory() ? 'directory' : 'special file'}).`, 'Replace it with the client\'s JSON/TOML/YAML file, or remove it from extraConfigs.');
  }
  if (st.size > MAX_CONFIG_BYTES) {
    throw new ConfigFileError('E_CONFIG_READ', p, `${p} is too large: ${sizeText(st.size)}, more than the ${sizeText(MAX_CONFIG_BYTES)} a config may be.`, 'Check the file; it is left alone, unread.');
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(realPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigFileError('E_CONFIG_READ', p, `Cannot read ${p} (${code}).`, code === 'EACCES' ? `Give your user read access: chmod u+r "${realPath}".` : 'Check the file.', e);
  }
  const text = bytes.toString('utf8');
  // A lossy decode would make the rewrite change bytes we must keep.
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw new NotUtf8Error(p, { path: p, realPath, text, bytes, stat: st });
  return { path: p, realPath, text, bytes, stat: st };
}

export interface ScannedConfig {
  candidate: ConfigCandidate;
  spec: ClientSpec;
  status: 'ok' | 'error';
  error?: ConfigFileError;
  sites: TokenSite[];
  /**
   * For an 'error' config, present when its bytes could be read (a parse error, non-UTF-8:
   * then a lossy decode), so a caller can still tell whether it holds a token. Never written back.
   */
  snapshot?: ConfigSnapshot;
}

/**
 * Reads and parses one config. Never throws: a broken, huge or hostile file is a result
 * (its error), so it cannot block the others.
 */
export async function scanConfig(c: ConfigCandidate): Promise<ScannedConfig> {
  const spec = clientById(c.client);
  try {
    return await scanConfigUnguarded(c, spec);
  } catch (e) {
    return { candidate: c, spec, status: 'error', error: asConfigError(e, c.path), sites: [] };
  }
}

async function scanConfigUnguarded(c: ConfigCandidate, spec: ClientSpec): Promise<ScannedConfig> {
  let snap: ConfigSnapshot;
  try {
    snap = await readConfigFile(c.path);
  } catch (e) {
    // A non-UTF-8 file is refused, but keeps its (lossy) text: if a token's text is in it, the
    // rotation's preflight must stop rather than leave that copy holding a dead token.
    if (e instanceof NotUtf8Error) return { candidate: c, spec, status: 'error', error: e, sites: [], snapshot: e.lossy };
    return { candidate: c, spec, status: 'error', error: asConfigError(e, c.path), sites: [] };
  }
  const max = maxConfigBytes(c.client, c.format);
  if (snap.bytes.length > max) {
    // Not parsed, but its text is kept: a rotation's preflight refuses to leave a dead copy in it.
    const err = new ConfigFileError(
      'E_CONFIG_READ',
      c.path,
      `${c.path} is too large: ${sizeText(snap.bytes.length)}, more than the ${sizeText(max)} such a config may be; it was not parsed.`,
      'Check the file (an MCP config is a few KB); it is left alone until it is smaller.',
    );
    return { candidate: c, spec, status: 'error', error: err, sites: [], snapshot: snap };
  }
  const res = locateTokens(snap.text, c.format);
  if (res.errors.length) {
    const err = new ConfigFileError(
      'E_CONFIG_PARSE',
      c.path,
      `${c.path} cannot be parsed as ${c.format.toUpperCase()}: ${res.errors[0]}${res.errors.length > 1 ? ` (+${res.errors.length - 1} more)` : ''}.`,
      isLimitError(res.errors[0] ?? '')
        ? 'It is beyond what an MCP config may be (see "One hostile or huge file" in docs/security.md); it is left alone.'
        : 'Fix the syntax (your client probably cannot read it either); the file is left alone until then.',
    );
    return { candidate: c, spec, status: 'error', error: err, sites: [], snapshot: snap };
  }
  return { candidate: c, spec, status: 'ok', sites: res.sites, snapshot: snap };
}

/**
 * Whether a readConfigFile error means the config is simply not there any more (deleted, or
 * its symlink left dangling): such a file holds no token, dead or alive, so a rotation has
 * nothing to write there, unlike a file it cannot read or parse.
 */
export function isGoneError(e: unknown): boolean {
  return e instanceof ConfigFileError && e.code === 'E_CONFIG_READ' && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function asConfigError(e: unknown, p: string): ConfigFileError {
  if (e instanceof ConfigFileError) return e;
  return new ConfigFileError('E_CONFIG_READ', p, `Cannot read ${p}: ${(e as Error).message}`, 'Check the file.', e);
}

/** A stable string for a site's place in its file, used as the location key. */
export function keyPathString(kp: (string | number)[]): string {
  return JSON.stringify(kp);
}
