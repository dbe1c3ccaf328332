/**
 * `doctor`: what is unsafe. Each check is a pure evaluation (facts in, findings out, table
 * tested) with a thin layer of I/O around it that gathers the facts: file modes, git state,
 * the store, a TLS handshake with the API. No finding ever carries a token value, only
 * fingerprints.
 */
import { execFile } from 'node:child_process';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Context } from '../context.js';
import { isLoopbackHost, validateApiUrl } from '../api/url.js';
import { RotatorError } from '../errors.js';
import type { PublicState } from '../rotation/policy.js';

export type Severity = 'ok' | 'warn' | 'danger';

export interface Finding {
  /** Stable check id, for scripts: config-permissions, config-in-git, admin-token, ... */
  id: string;
  severity: Severity;
  file?: string;
  fingerprint?: string;
  message: string;
  /** What to do; empty for an 'ok' finding. */
  fix: string;
}

export const ADMIN_ADVICE =
  'Use a dedicated token for MCP with the least role that works (editor or viewer); the MCP server can do everything an admin can.';

/** A path safe to paste into a POSIX shell. */
export function shq(p: string): string {
  return /^[A-Za-z0-9_@%+=:,./~-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

// =======================================================================================
// Pure evaluators

export interface ConfigModeFacts {
  /** The config as the catalog names it (may be a symlink). */
  file: string;
  /** The file really holding the token (symlinks resolved). */
  realPath: string;
  /** st_mode of the real file. */
  mode: number;
  fingerprints: string[];
}

/** A config holding a token must not be readable (or writable) by group or others. */
export function checkConfigMode(f: ConfigModeFacts): Finding {
  const via = f.realPath !== f.file ? ` (a symlink to ${f.realPath})` : '';
  const fps = f.fingerprints.join(', ');
  const base = { id: 'config-permissions', file: f.file, ...(f.fingerprints.length === 1 ? { fingerprint: f.fingerprints[0] } : {}) };
  const loose = f.mode & 0o077;
  if (loose === 0) return { ...base, severity: 'ok', message: `${f.file}${via} is private (mode ${octal(f.mode)}).`, fix: '' };
  const who = [loose & 0o070 ? 'group' : '', loose & 0o007 ? 'others' : ''].filter(Boolean).join(' and ');
  const what = loose & 0o044 ? 'read' : 'write';
  return {
    ...base,
    severity: 'danger',
    message: `${f.file}${via} holds token ${fps} and can be ${what === 'read' ? 'read' : 'changed'} by ${who} (mode ${octal(f.mode)}).`,
    fix: `chmod 600 ${shq(f.realPath)}`,
  };
}

export interface DirFacts {
  dir: string;
  mode: number;
  /** Configs below it (for the message). */
  files: string[];
  /** Whether a config sits directly in this directory. */
  direct: boolean;
}

/**
 * A world-writable directory on the way to a config lets anyone rename or replace what is
 * below it. The sticky bit (/tmp) stops that for entries of others, so such a directory
 * matters only when a config sits directly in it.
 */
export function checkDirectory(d: DirFacts): Finding | null {
  if ((d.mode & 0o002) === 0) return null;
  const sticky = (d.mode & 0o1000) !== 0;
  if (sticky && !d.direct) return null;
  const list = d.files.slice(0, 3).join(', ') + (d.files.length > 3 ? `, and ${d.files.length - 3} more` : '');
  return {
    id: 'config-dir-writable',
    severity: 'warn',
    file: d.dir,
    message: `${d.dir} is writable by everyone (mode ${octal(d.mode)}${sticky ? ', sticky' : ''}) and lies on the way to ${list}: another user could ${sticky ? 'have planted the file' : 'replace the config or a directory above it'}.`,
    fix: sticky ? `Move the config out of ${shq(d.dir)} into a directory only you can write.` : `chmod o-w ${shq(d.dir)}`,
  };
}

export type GitFacts =
  | { state: 'none' }
  | { state: 'tracked' | 'untracked' | 'ignored'; root: string }
  | { state: 'unknown'; root: string; reason: string };

/** A config inside a git work tree: committed is a leak, untracked is a leak waiting to happen. */
export function checkGit(file: string, fingerprints: string[], g: GitFacts): Finding | null {
  if (g.state === 'none') return null;
  const rel = path.relative(g.root, file) || path.basename(file);
  const base = { id: 'config-in-git', file, ...(fingerprints.length === 1 ? { fingerprint: fingerprints[0] } : {}) };
  const rotate = fingerprints.map((fp) => `mcp-token-rotator rotate --fingerprint ${fp}`).join(' && ');
  switch (g.state) {
    case 'tracked':
      return {
        ...base,
        severity: 'danger',
        message: `${file} is committed to git: the token is in the history; rotate it (${rotate}) and purge it (repository ${g.root}).`,
        fix:
          `${rotate}; then stop tracking it: git -C ${shq(g.root)} rm --cached -- ${shq(rel)} && echo ${shq('/' + rel)} >> ${shq(path.join(g.root, '.gitignore'))}; ` +
          `then purge the history (e.g. git filter-repo --invert-paths --path ${shq(rel)}) and force-push if it was ever pushed.`,
      };
    case 'untracked':
      return {
        ...base,
        severity: 'warn',
        message: `${file} is inside the git work tree ${g.root}, not committed yet but not ignored either: one "git add ." away from leaking the token.`,
        fix: `add it to .gitignore: echo ${shq('/' + rel)} >> ${shq(path.join(g.root, '.gitignore'))}`,
      };
    case 'ignored':
      return { ...base, severity: 'ok', message: `${file} is inside the git work tree ${g.root} and ignored by git.`, fix: '' };
    case 'unknown':
      return {
        ...base,
        severity: 'warn',
        message: `${file} is inside the git work tree ${g.root}; whether git tracks it is unknown (${g.reason}).`,
        fix: `Check with: git -C ${shq(g.root)} ls-files -- ${shq(rel)}; if it is listed, ${rotate} and purge it; otherwise add it to .gitignore.`,
      };
  }
}

export interface TokenFacts {
  fingerprint: string;
  role: string | null;
  state: PublicState;
  ageDays: number;
  files: string[];
}

/** Admin tokens in MCP configs: the MCP server can do all an admin can. */
export function checkTokenRole(t: TokenFacts): Finding | null {
  const where = t.files.join(', ') || 'no config any more';
  if (t.role === 'admin') {
    return {
      id: 'admin-token',
      severity: 'warn',
      fingerprint: t.fingerprint,
      message: `Token ${t.fingerprint} has the admin role and is used for MCP (${where}).`,
      fix: `${ADMIN_ADVICE} Then adopt the new token everywhere: mcp-token-rotator set-token --fingerprint ${t.fingerprint} < new-token.txt`,
    };
  }
  if (t.role === null) return null;
  return { id: 'token-role', severity: 'ok', fingerprint: t.fingerprint, message: `Token ${t.fingerprint} has the ${t.role} role.`, fix: '' };
}

/** Invalid, due or mid-rotation tokens: each with the command that deals with it. */
export function checkTokenState(t: TokenFacts, warnAfterDays: number): Finding {
  const where = t.files.join(', ') || 'no config any more';
  const base = { fingerprint: t.fingerprint };
  switch (t.state) {
    case 'invalid':
      return {
        ...base,
        id: 'token-invalid',
        severity: 'warn',
        message: `Token ${t.fingerprint} is invalid or revoked (the API answered 401); the MCP clients using it (${where}) are broken.`,
        fix: `Regenerate it in the Certorix web UI (MCP / API page), then: mcp-token-rotator set-token --fingerprint ${t.fingerprint} < new-token.txt`,
      };
    case 'due':
      return {
        ...base,
        id: 'token-due',
        severity: 'warn',
        message: `Token ${t.fingerprint} is ${t.ageDays} days old; Certorix asks for rotation every ${warnAfterDays} days.`,
        fix: `mcp-token-rotator rotate --fingerprint ${t.fingerprint}`,
      };
    case 'rotating':
      return {
        ...base,
        id: 'token-rotating',
        severity: 'warn',
        message: `A rotation of token ${t.fingerprint} is unfinished.`,
        fix: 'Run "mcp-token-rotator status" once the API is reachable; any command finishes it.',
      };
    default:
      return { ...base, id: 'token-age', severity: 'ok', message: `Token ${t.fingerprint} is ${t.ageDays} days old (rotate at ${warnAfterDays}).`, fix: '' };
  }
}

/** A token a config still holds after it was retired: that client is broken. */
export function checkRetiredInConfig(fp: string, successor: string | null, files: string[]): Finding {
  return {
    id: 'token-retired-in-config',
    severity: 'warn',
    fingerprint: fp,
    message: `Retired token ${fp}${successor ? ` (replaced by ${successor})` : ''} is still in ${files.join(', ')}; that client fails to authenticate.`,
    fix: 'Run "mcp-token-rotator daemon" (it heals such files), or pipe the current token to "mcp-token-rotator set-token".',
  };
}

export interface StateEntry {
  path: string;
  kind: 'dir' | 'file' | 'socket' | 'other';
  mode: number;
}

/**
 * The state directory holds the journal (the one place a live token may rest for a
 * moment): it must be 0700 and every file in it 0600. `entries` is null when it does not
 * exist yet; the first entry is the directory itself.
 */
export function checkStateDir(dir: string, entries: StateEntry[] | null): Finding[] {
  if (entries === null) return [{ id: 'state-permissions', severity: 'ok', file: dir, message: `State directory ${dir} does not exist yet.`, fix: '' }];
  const out: Finding[] = [];
  for (const e of entries) {
    if (e.kind === 'dir' && e.mode & 0o077) {
      out.push({
        id: 'state-permissions',
        severity: 'danger',
        file: e.path,
        message: `${e.path === dir ? 'The state directory' : 'State subdirectory'} ${e.path} is mode ${octal(e.mode)}, not 0700: other users can look into it.`,
        fix: `chmod 700 ${shq(e.path)}`,
      });
    } else if (e.kind === 'file' && e.mode & 0o077) {
      out.push({
        id: 'state-permissions',
        severity: 'danger',
        file: e.path,
        message: `State file ${e.path} is mode ${octal(e.mode)}, not 0600.`,
        fix: `chmod 600 ${shq(e.path)}`,
      });
    } else if (e.kind === 'socket' && e.mode & 0o022) {
      // Connecting needs write permission; whoever can connect can ask for rotations.
      out.push({
        id: 'state-permissions',
        severity: 'danger',
        file: e.path,
        message: `Control socket ${e.path} is writable by group or others (mode ${octal(e.mode)}).`,
        fix: `chmod 600 ${shq(e.path)}`,
      });
    }
  }
  if (!out.length) {
    const files = entries.filter((e) => e.kind === 'file').length;
    out.push({ id: 'state-permissions', severity: 'ok', file: dir, message: `State directory ${dir} is 0700 and its ${files} file(s) 0600.`, fix: '' });
  }
  return out;
}

/** The API URL from the settings: https, or plain http only for loopback. */
export function checkApiUrl(url: string, settingsFile: string): { finding: Finding | null; parsed: URL | null } {
  try {
    return { finding: null, parsed: validateApiUrl(url) };
  } catch (e) {
    const msg = e instanceof RotatorError ? e.message : String(e);
    return {
      finding: {
        id: 'api-url',
        severity: 'danger',
        file: settingsFile,
        message: msg,
        fix: 'Set "apiUrl" (or CERTORIX_API_URL) to an https:// URL such as https://api.certorix.com; plain http:// only for 127.0.0.1, ::1 or localhost.',
      },
      parsed: null,
    };
  }
}

export interface ProbeResult {
  ok: boolean;
  /** Negotiated TLS version (e.g. "TLSv1.3"), or "http" for plain loopback. */
  protocol?: string;
  error?: string;
}

export function checkApiProbe(url: URL, r: ProbeResult, settingsFile: string): Finding {
  const shown = url.origin + (url.pathname === '/' ? '' : url.pathname);
  if (r.ok) {
    const how = r.protocol === 'http' ? 'plain http (loopback only: it never leaves this machine)' : (r.protocol ?? 'TLS');
    return { id: 'api-reachable', severity: 'ok', message: `The API at ${shown} is reachable over ${how}.`, fix: '' };
  }
  return {
    id: 'api-reachable',
    severity: 'warn',
    message: `The API at ${shown} is not reachable: ${r.error ?? 'unknown error'}. Rotation and token checks need it.`,
    fix: `Check the network, any HTTPS proxy, and "apiUrl" in ${settingsFile} (or CERTORIX_API_URL); the API must offer TLS 1.3 with a trusted certificate.`,
  };
}

export function doctorExitCode(findings: Finding[]): 0 | 2 {
  return findings.some((f) => f.severity === 'danger') ? 2 : 0;
}

export function summarize(findings: Finding[]): { danger: number; warn: number; ok: number } {
  const s = { danger: 0, warn: 0, ok: 0 };
  for (const f of findings) s[f.severity]++;
  return s;
}

const RANK: Record<Severity, number> = { danger: 0, warn: 1, ok: 2 };

/** Worst first; the order within a severity is the order of the checks. Keys in one order. */
export function sortFindings(findings: Finding[]): Finding[] {
  return findings
    .map((f, i) => [f, i] as const)
    .sort((a, b) => RANK[a[0].severity] - RANK[b[0].severity] || a[1] - b[1])
    .map(([f]) => ({
      id: f.id,
      severity: f.severity,
      ...(f.file !== undefined ? { file: f.file } : {}),
      ...(f.fingerprint !== undefined ? { fingerprint: f.fingerprint } : {}),
      message: f.message,
      fix: f.fix,
    }));
}

// =======================================================================================
// I/O: gathering the facts

/** Walks the state directory (lstat: a symlink in it is not followed). */
export async function readStateEntries(dir: string): Promise<StateEntry[] | null> {
  let top;
  try {
    top = await stat(dir);
  } catch {
    return null;
  }
  const out: StateEntry[] = [{ path: dir, kind: top.isDirectory() ? 'dir' : 'other', mode: top.mode }];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = path.join(d, n);
      try {
        const st = await lstat(p);
        const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSocket() ? 'socket' : 'other';
        out.push({ path: p, kind, mode: st.mode });
        if (kind === 'dir') await walk(p, depth + 1);
      } catch {
        // removed meanwhile (a WAL file after a checkpoint)
      }
    }
  };
  if (top.isDirectory()) await walk(dir, 0);
  return out;
}

export interface GitOptions {
  /** The git program (default "git"); tests point it at a missing one. */
  git?: string;
}

function runGit(git: string, args: string[], cwd: string): Promise<{ code: number | 'ENOENT'; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, GIT_OPTIONAL_LOCKS: '0', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' };
  for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_CEILING_DIRECTORIES', 'GIT_COMMON_DIR']) delete env[k];
  return new Promise((resolve) => {
    // No shell; fsmonitor off so that looking never runs a hook command from the repo's config.
    // --literal-pathspecs: a file named like a glob ([x]*.json) must not match others; check-ignore
    // takes plain paths and refuses the flag.
    const literal = args[0] === 'check-ignore' ? [] : ['--literal-pathspecs'];
    execFile(git, ['-c', 'core.fsmonitor=false', ...literal, ...args], { cwd, env, timeout: 15_000, windowsHide: true }, (error, _o, stderr) => {
      if (!error) return resolve({ code: 0, stderr: String(stderr) });
      const e = error as NodeJS.ErrnoException & { code?: number | string };
      if (e.code === 'ENOENT') return resolve({ code: 'ENOENT', stderr: '' });
      resolve({ code: typeof e.code === 'number' ? e.code : -1, stderr: String(stderr) });
    });
  });
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/**
 * The git work tree a file is in: walks up from its directory looking for `.git` (a
 * directory, or a file for worktrees and submodules), up to and including HOME, never into
 * HOME's parent (other users' trees are none of our business).
 */
export async function findGitRoot(file: string, home: string): Promise<string | null> {
  const realHome = await realpath(home).catch(() => path.resolve(home));
  const stops = new Set([path.dirname(realHome), path.dirname(path.resolve(home))]);
  let dir = path.dirname(file);
  for (;;) {
    if (stops.has(dir)) return null;
    if (await exists(path.join(dir, '.git'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export async function gitFacts(file: string, home: string, opts: GitOptions = {}): Promise<GitFacts> {
  const root = await findGitRoot(file, home);
  if (root === null) return { state: 'none' };
  const git = opts.git ?? 'git';
  const rel = path.relative(root, file);
  const tracked = await runGit(git, ['ls-files', '--error-unmatch', '--', rel], root);
  if (tracked.code === 'ENOENT') return { state: 'unknown', root, reason: 'git is not installed' };
  if (tracked.code === 0) return { state: 'tracked', root };
  if (tracked.code !== 1) return { state: 'unknown', root, reason: `git ls-files failed: ${firstLine(tracked.stderr)}` };
  const ignored = await runGit(git, ['check-ignore', '-q', '--', rel], root);
  if (ignored.code === 0) return { state: 'ignored', root };
  if (ignored.code === 1) return { state: 'untracked', root };
  return { state: 'unknown', root, reason: `git check-ignore failed: ${firstLine(ignored.stderr)}` };
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 200) || 'no message';
}

export interface ProbeOptions {
  timeoutMs?: number;
  /** Extra trusted CA (tests with a self-signed server). */
  ca?: string | Buffer;
}

/**
 * One TLS 1.3 handshake with the API host (certificate checked as the real client checks
 * it), or a TCP connect for plain http on loopback. No HTTP request and no token is sent.
 */
export function probeApi(url: URL, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const https = url.protocol === 'https:';
  const port = Number(url.port || (https ? 443 : 80));
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult, sock: net.Socket) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(r);
    };
    let sock: net.Socket;
    if (https) {
      const s = tls.connect({
        host,
        port,
        ...(net.isIP(host) ? {} : { servername: host }),
        minVersion: 'TLSv1.3',
        ALPNProtocols: ['http/1.1'],
        ...(opts.ca ? { ca: opts.ca } : {}),
      });
      s.once('secureConnect', () => finish({ ok: true, protocol: s.getProtocol() ?? 'TLS' }, s));
      sock = s;
    } else {
      if (!isLoopbackHost(url.hostname)) {
        resolve({ ok: false, error: 'plain http is refused for a host that is not loopback' });
        return;
      }
      sock = net.connect({ host, port });
      sock.once('connect', () => finish({ ok: true, protocol: 'http' }, sock));
    }
    sock.setTimeout(timeoutMs, () => finish({ ok: false, error: `no answer within ${Math.round(timeoutMs / 1000)} s` }, sock));
    sock.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: describeNetError(e) }, sock));
  });
}

function describeNetError(e: NodeJS.ErrnoException): string {
  const code = e.code ?? '';
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|NO_PROTOCOLS_AVAILABLE/i.test(code + e.message)) {
    return `the server does not offer TLS 1.3 (${code || e.message})`;
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME|ERR_TLS_CERT/i.test(code)) return `its certificate is not trusted (${code})`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name does not resolve (${code})`;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)';
  return code ? `${code}: ${e.message}` : e.message;
}

// =======================================================================================
// The whole run

export interface DoctorOptions {
  offline: boolean;
  git?: string;
  /** Replaces the TLS probe (tests). */
  probe?: (url: URL) => Promise<ProbeResult>;
}

/**
 * Gathers every finding, worst first. Order matters: the state directory is looked at
 * before the store is opened, because opening it tightens the modes it would report.
 */
export async function runDoctor(ctx: Context, opts: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const posix = ctx.pathEnv.platform !== 'win32';
  const home = ctx.pathEnv.home;

  // 1. State directory (before ctx.store touches it).
  if (posix) findings.push(...checkStateDir(ctx.paths.dir, await readStateEntries(ctx.paths.dir)));

  // 2. A fresh offline discovery, recorded, plus what the store already knew.
  const { findTokens, recordScan } = await import('../scan.js');
  const scan = await findTokens(ctx);
  recordScan(ctx, scan);
  for (const c of scan.configs) {
    if (c.status === 'error' && c.error) {
      findings.push({
        id: 'config-unreadable',
        severity: 'warn',
        file: c.candidate.path,
        message: c.error.message,
        fix: c.error.hint ?? `Check ${c.candidate.path}.`,
      });
    }
  }
  const byFile = new Map<string, Set<string>>();
  const add = (file: string, fp: string) => {
    let s = byFile.get(file);
    if (!s) byFile.set(file, (s = new Set()));
    s.add(fp);
  };
  for (const l of ctx.store.listLocations()) add(l.path, l.fingerprint);
  for (const [fp, t] of scan.tokens) for (const s of t.sites) add(s.path, fp);

  // 3. Per config: mode of the real file, directories on the way, git.
  const dirs = new Map<string, DirFacts>();
  const seenReal = new Set<string>();
  for (const [file, fpSet] of [...byFile].sort(([a], [b]) => a.localeCompare(b))) {
    const fingerprints = [...fpSet].sort();
    let real: string;
    let mode: number;
    try {
      real = await realpath(file);
      mode = (await stat(real)).mode;
    } catch {
      continue; // gone since it was recorded
    }
    if (seenReal.has(real)) continue;
    seenReal.add(real);
    if (posix) {
      findings.push(checkConfigMode({ file, realPath: real, mode, fingerprints }));
      for (let d = path.dirname(real), first = true; ; first = false) {
        let facts = dirs.get(d);
        if (!facts) {
          const st = await stat(d).catch(() => null);
          if (st) dirs.set(d, (facts = { dir: d, mode: st.mode, files: [], direct: false }));
        }
        if (facts) {
          facts.files.push(file);
          facts.direct ||= first;
        }
        const parent = path.dirname(d);
        if (parent === d) break;
        d = parent;
      }
    }
    const g = checkGit(real, fingerprints, await gitFacts(real, home, { ...(opts.git ? { git: opts.git } : {}) }));
    if (g) findings.push(file !== real ? { ...g, file, message: `${g.message} (${file} is a symlink to it)` } : g);
  }
  for (const d of dirs.values()) {
    const f = checkDirectory(d);
    if (f) findings.push(f);
  }

  // 4. Tokens: role, validity, age; retired tokens still in a config.
  const { buildStatus } = await import('../status.js');
  for (const t of buildStatus(ctx)) {
    const facts: TokenFacts = { fingerprint: t.fingerprint, role: t.role, state: t.state, ageDays: t.ageDays, files: t.locations.map((l) => l.path) };
    const role = checkTokenRole(facts);
    if (role) findings.push(role);
    findings.push(checkTokenState(facts, ctx.settings.warnAfterDays));
  }
  for (const [fp, t] of scan.tokens) {
    if (ctx.store.getToken(fp)?.state === 'retired') {
      findings.push(checkRetiredInConfig(fp, ctx.store.currentSuccessor(fp), [...new Set(t.sites.map((s) => s.path))]));
    }
  }

  findings.push(...(await (await import('../broker/doctor.js')).brokerFindings(ctx, scan)));

  // 5. The API.
  const api = checkApiUrl(ctx.settings.apiUrl, ctx.settingsFile);
  if (api.finding) findings.push(api.finding);
  if (api.parsed && !opts.offline) {
    const probe = opts.probe ?? ((u: URL) => probeApi(u, { timeoutMs: ctx.settings.requestTimeoutMs }));
    findings.push(checkApiProbe(api.parsed, await probe(api.parsed), ctx.settingsFile));
  }
  return sortFindings(findings);
}
