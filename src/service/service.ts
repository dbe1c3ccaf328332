/**
 * install-service / uninstall-service: the systemd user unit (Linux) or the launchd agent
 * (macOS) rendered from the templates in `systemd/` and `launchd/`, with absolute paths
 * filled in. Rendering and planning are pure; the I/O (write the unit, run systemctl or
 * launchctl through execFile, never a shell) is a thin layer with an injectable command
 * runner so tests record commands instead of running them.
 */
import { execFile } from 'node:child_process';
import { childEnv } from '../process/child-env.js';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, realpath, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RotatorError } from '../errors.js';
import type { Platform } from '../paths.js';

export type ServiceKind = 'systemd' | 'launchd';

export const SYSTEMD_UNIT = 'mcp-token-rotator.service';
export const LAUNCHD_LABEL = 'com.mcp-token-rotator.daemon';
const APP = 'mcp-token-rotator';

const TEMPLATE_FILES: Record<ServiceKind, string> = {
  systemd: path.join('systemd', SYSTEMD_UNIT),
  launchd: path.join('launchd', `${LAUNCHD_LABEL}.plist`),
};

// ---------------------------------------------------------------------------------------
// Locating the package: this file runs from src/ (tests, tsx) and from dist/src/ (built).

let cachedRoot: string | undefined;

/** The directory holding this package's package.json (and the unit templates). */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === APP) return (cachedRoot = dir);
    } catch {
      // not here; keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new RotatorError('E_SERVICE', `Cannot find the ${APP} package directory above ${fileURLToPath(import.meta.url)}.`, {
        hint: 'Reinstall the package; its package.json and the systemd/ and launchd/ templates must sit beside dist/.',
      });
    }
    dir = parent;
  }
}

export function templatePath(kind: ServiceKind): string {
  return path.join(packageRoot(), TEMPLATE_FILES[kind]);
}

/** The built CLI the service runs: the package's dist/src/cli/main.js, symlinks resolved. */
export function defaultBin(): string {
  const p = path.join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

// ---------------------------------------------------------------------------------------
// Rendering (pure but for reading the template)

export interface UnitVars {
  /** Absolute path of the node binary (process.execPath). */
  node: string;
  /** Absolute path of the built CLI (dist/src/cli/main.js). */
  bin: string;
  home: string;
  /** launchd: where StandardOutPath / StandardErrorPath go. */
  logDir: string;
  /** Extra arguments after "daemon", e.g. ["--config", "/abs/settings.json"]. */
  args?: string[];
  /** systemd: Environment= lines (e.g. XDG_STATE_HOME, so the daemon uses the CLI's paths). */
  env?: Record<string, string>;
  /** systemd: writable paths besides %h (an XDG dir outside HOME). */
  readWritePaths?: string[];
  /** launchd: PATH for the agent (hooks need one); default: node's directory plus the usual bins. */
  pathVar?: string;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkValue(what: string, v: string, absolute: boolean): void {
  if (CONTROL.test(v)) {
    throw new RotatorError('E_SERVICE', `The ${what} path ${JSON.stringify(v)} contains a control character (a newline?); it cannot go into a service file.`, {
      hint: 'Move the file to a path without control characters, then run "mcp-token-rotator install-service" again.',
    });
  }
  if (absolute && !path.posix.isAbsolute(v)) {
    throw new RotatorError('E_SERVICE', `The ${what} path "${v}" is not absolute; a service needs absolute paths.`, {
      hint: 'Run "mcp-token-rotator install-service" from the installed package (npm install -g, or npm run build in a checkout).',
    });
  }
}

/**
 * The executable of ExecStart=: systemd takes it literally but for specifiers (`%` doubled;
 * no `$` expansion happens on it), and refuses outright a name with a quote or a backslash.
 */
export function systemdExecPath(s: string): string {
  if (/["'\\]/.test(s)) {
    throw new RotatorError('E_SERVICE', `systemd cannot run an executable whose path contains a quote or a backslash: ${s}`, {
      hint: 'Install Node.js under a path without quotes or backslashes, then run "mcp-token-rotator install-service" with it.',
    });
  }
  return '"' + s.replace(/%/g, '%%') + '"';
}

/**
 * One systemd command-line argument (ExecStart=): double-quoted with C escapes for `\` and `"`,
 * `%` doubled (specifiers) and `$` doubled (environment expansion), so spaces, `&`, `;`,
 * quotes and `$HOME` in a path all arrive verbatim.
 */
export function systemdExecWord(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$') + '"';
}

/** A quoted systemd value that gets specifier but no `$` expansion (paths, Environment=). */
export function systemdQuoted(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%') + '"';
}

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

export function defaultLaunchdPath(node: string): string {
  const dirs = [path.posix.dirname(node), '/opt/homebrew/bin', '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  return [...new Set(dirs)].join(':');
}

function docUrl(): string {
  return pathToFileURL(path.join(packageRoot(), 'README.md')).href;
}

/** The unit file's content for `kind` with `vars` filled in. Throws E_SERVICE on a path it cannot encode. */
export function renderUnit(kind: ServiceKind, vars: UnitVars, template: string = readFileSync(templatePath(kind), 'utf8')): string {
  checkValue('node', vars.node, true);
  checkValue('CLI', vars.bin, true);
  checkValue('home', vars.home, true);
  checkValue('log directory', vars.logDir, true);
  for (const a of vars.args ?? []) checkValue('argument', a, false);
  for (const [k, v] of Object.entries(vars.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new RotatorError('E_SERVICE', `"${k}" is not a valid environment variable name.`);
    checkValue(k, v, false);
  }
  for (const p of vars.readWritePaths ?? []) checkValue('writable', p, true);

  let out: string;
  if (kind === 'systemd') {
    const env = Object.entries(vars.env ?? {}).map(([k, v]) => `Environment=${systemdQuoted(`${k}=${v}`)}`);
    out = fill(template, {
      // Replaced first so that a path containing "@NODE@" cannot be rewritten again.
      '@ENVIRONMENT@\n': env.length ? env.join('\n') + '\n' : '',
      '@DOCURL@': docUrl().replace(/%/g, '%%'),
      '@NODE@': systemdExecPath(vars.node),
      '@BIN@': systemdExecWord(vars.bin),
      '@ARGS@': (vars.args ?? []).map((a) => ' ' + systemdExecWord(a)).join(''),
      '@RWPATHS@': (vars.readWritePaths ?? []).map((p) => ' ' + systemdQuoted('-' + p)).join(''),
    });
  } else {
    out = fill(template, {
      '@NODE@': xmlEscape(vars.node),
      '@BIN@': xmlEscape(vars.bin),
      '@ARGS@': (vars.args ?? []).map((a) => `\n\t\t<string>${xmlEscape(a)}</string>`).join(''),
      '@HOME@': xmlEscape(vars.home),
      '@LOGDIR@': xmlEscape(vars.logDir),
      '@PATH@': xmlEscape(vars.pathVar ?? defaultLaunchdPath(vars.node)),
    });
  }
  return out;
}

/** Replaces every placeholder in one pass, so substituted text is never scanned again. */
function fill(template: string, map: Record<string, string>): string {
  const keys = Object.keys(map).sort((a, b) => b.length - a.length);
  const known = new Set(keys.map((k) => k.trim()));
  for (const m of template.matchAll(/@[A-Z_]+@/g)) {
    if (!known.has(m[0])) throw new RotatorError('E_SERVICE', `The service template has an unknown placeholder ${m[0]}.`, { hint: 'Reinstall the package.' });
  }
  const re = new RegExp(keys.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return template.replace(re, (m) => map[m] ?? m);
}

// ---------------------------------------------------------------------------------------
// Planning (pure)

export interface PlanStep {
  argv: string[];
  /** 'before' runs before the unit file is written/removed, 'after' after. */
  phase: 'before' | 'after';
  /** A failure is expected and harmless (e.g. stopping a service that is not loaded). */
  mayFail: boolean;
  /** Extra attempts, 1 s apart (launchctl bootstrap right after bootout can fail with EIO). */
  retries?: number;
}

export interface ServicePlan {
  action: 'install' | 'uninstall';
  kind: ServiceKind;
  unitPath: string;
  /** The unit file's content (install); null for uninstall. */
  content: string | null;
  /** launchd: the log directory to create. */
  logDir: string | null;
  /** Extra files to remove on uninstall (systemd's default.target.wants link). */
  alsoRemove: string[];
  steps: PlanStep[];
  /** Every command, in order, as argv arrays (what --dry-run and --json show). */
  commands: string[][];
}

export interface PlanOptions {
  env?: Record<string, string | undefined>;
  node?: string;
  bin?: string;
  /** --config FILE, passed on to the daemon (absolute). */
  configFile?: string;
  /** Content of the unit already installed, if any; a changed unit is restarted. */
  previous?: string | null;
  /** Uninstall: whether a unit file is present (when not, every command may fail). */
  installed?: boolean;
}

function nonEmptyAbs(s: string | undefined): string | undefined {
  return s && s.trim() !== '' && path.posix.isAbsolute(s) ? s : undefined;
}

function isUnder(p: string, dir: string): boolean {
  const rel = path.posix.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.posix.isAbsolute(rel));
}

export function unitPathFor(platform: Platform, home: string, env: Record<string, string | undefined> = {}): { kind: ServiceKind; unitPath: string } {
  if (platform === 'win32') throw windowsError();
  if (platform === 'darwin') return { kind: 'launchd', unitPath: path.posix.join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`) };
  const cfg = nonEmptyAbs(env.XDG_CONFIG_HOME) ?? path.posix.join(home, '.config');
  return { kind: 'systemd', unitPath: path.posix.join(cfg, 'systemd', 'user', SYSTEMD_UNIT) };
}

export function launchdLogDir(home: string): string {
  return path.posix.join(home, 'Library', 'Logs', APP);
}

function windowsError(node = process.execPath, bin = '<package>\\dist\\src\\cli\\main.js'): RotatorError {
  return new RotatorError('E_SERVICE', 'install-service supports systemd (Linux) and launchd (macOS); Windows has neither, so nothing was installed.', {
    hint:
      `Use Task Scheduler: create a task triggered "At log on" for your user that runs "${node}" with the arguments "${bin}" daemon ` +
      '(or put "mcp-token-rotator daemon" in a script that runs at logon).',
  });
}

export function planInstall(platform: Platform, home: string, uid: number, opts: PlanOptions = {}): ServicePlan {
  const node = opts.node ?? process.execPath;
  const bin = opts.bin ?? defaultBin();
  if (platform === 'win32') throw windowsError(node, bin);
  const env = opts.env ?? {};
  const { kind, unitPath } = unitPathFor(platform, home, env);
  const args = opts.configFile ? ['--config', opts.configFile] : [];
  const steps: PlanStep[] = [];
  let content: string;
  let logDir: string | null = null;
  if (kind === 'systemd') {
    // The user manager may not share the shell's XDG_* variables; pass them on so the
    // daemon reads the same settings and state as the CLI.
    const unitEnv: Record<string, string> = {};
    const rw: string[] = [];
    for (const k of ['XDG_CONFIG_HOME', 'XDG_STATE_HOME'] as const) {
      const v = nonEmptyAbs(env[k]);
      if (v === undefined) continue;
      unitEnv[k] = v;
      if (!isUnder(v, home)) rw.push(v);
    }
    content = renderUnit('systemd', { node, bin, home, logDir: home, args, env: unitEnv, readWritePaths: rw });
    steps.push({ argv: ['systemctl', '--user', 'daemon-reload'], phase: 'after', mayFail: false });
    steps.push({ argv: ['systemctl', '--user', 'enable', '--now', SYSTEMD_UNIT], phase: 'after', mayFail: false });
    // "enable --now" leaves a running service alone; a changed unit must be restarted to apply.
    if (opts.previous != null && opts.previous !== content) {
      steps.push({ argv: ['systemctl', '--user', 'try-restart', SYSTEMD_UNIT], phase: 'after', mayFail: false });
    }
  } else {
    logDir = launchdLogDir(home);
    content = renderUnit('launchd', { node, bin, home, logDir, args });
    const target = `gui/${uid}`;
    steps.push({ argv: ['launchctl', 'bootout', `${target}/${LAUNCHD_LABEL}`], phase: 'before', mayFail: true });
    steps.push({ argv: ['launchctl', 'enable', `${target}/${LAUNCHD_LABEL}`], phase: 'after', mayFail: false });
    steps.push({ argv: ['launchctl', 'bootstrap', target, unitPath], phase: 'after', mayFail: false, retries: 3 });
  }
  return { action: 'install', kind, unitPath, content, logDir, alsoRemove: [], steps, commands: steps.map((s) => s.argv) };
}

export function planUninstall(platform: Platform, home: string, uid: number, opts: PlanOptions = {}): ServicePlan {
  if (platform === 'win32') throw windowsError(opts.node, opts.bin);
  const { kind, unitPath } = unitPathFor(platform, home, opts.env ?? {});
  const installed = opts.installed !== false;
  const steps: PlanStep[] = [];
  const alsoRemove: string[] = [];
  if (kind === 'systemd') {
    steps.push({ argv: ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT], phase: 'before', mayFail: true });
    // "disable" removes it, but not when systemctl cannot reach the user manager.
    alsoRemove.push(path.posix.join(path.posix.dirname(unitPath), 'default.target.wants', SYSTEMD_UNIT));
    steps.push({ argv: ['systemctl', '--user', 'daemon-reload'], phase: 'after', mayFail: !installed });
    steps.push({ argv: ['systemctl', '--user', 'reset-failed', SYSTEMD_UNIT], phase: 'after', mayFail: true });
  } else {
    steps.push({ argv: ['launchctl', 'bootout', `gui/${uid}/${LAUNCHD_LABEL}`], phase: 'before', mayFail: true });
  }
  return { action: 'uninstall', kind, unitPath, content: null, logDir: null, alsoRemove, steps, commands: steps.map((s) => s.argv) };
}

// ---------------------------------------------------------------------------------------
// Running (thin I/O)

export type CommandRunner = (cmd: string[]) => Promise<{ code: number; stderr: string }>;

/** Exit code used when the program does not exist (as a shell would say). */
export const NOT_FOUND = 127;

/** Runs argv with execFile (no shell). A missing program resolves with code 127. */
export const execRunner: CommandRunner = (cmd) =>
  new Promise((resolve) => {
    const [file, ...args] = cmd;
    if (file === undefined) return resolve({ code: NOT_FOUND, stderr: 'empty command' });
    execFile(file, args, { timeout: 60_000, windowsHide: true, maxBuffer: 1024 * 1024, env: childEnv(process.env) }, (error, _stdout, stderr) => {
      if (!error) return resolve({ code: 0, stderr: String(stderr) });
      const e = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
      if (e.code === 'ENOENT') return resolve({ code: NOT_FOUND, stderr: `${file}: command not found` });
      if (typeof e.code === 'number') return resolve({ code: e.code, stderr: String(stderr) });
      resolve({ code: 1, stderr: String(stderr) || e.message });
    });
  });

export interface ServiceOptions {
  platform: Platform;
  home: string;
  uid: number;
  dryRun: boolean;
  run?: CommandRunner;
  env?: Record<string, string | undefined>;
  node?: string;
  bin?: string;
  configFile?: string;
  /** Pause between retries (tests pass 0). */
  retryDelayMs?: number;
}

export interface CommandOutcome {
  command: string[];
  code: number;
  /** First line(s) of stderr, trimmed. */
  stderr: string;
  /** A failure that was expected and ignored. */
  tolerated: boolean;
}

export interface ServiceResult {
  action: 'install' | 'uninstall';
  kind: ServiceKind;
  unitPath: string;
  content: string | null;
  commands: string[][];
  dryRun: boolean;
  /** install: the unit file was written. */
  written: boolean;
  /** uninstall: the unit file was there and was removed. */
  removed: boolean;
  ran: CommandOutcome[];
  /** Set when a command failed; the unit file may already be written (see `written`). */
  error: RotatorError | null;
  /** Things worth telling the user (stderr in --json mode). */
  notes: string[];
}

export function shellJoin(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

async function readIfExists(p: string): Promise<string | null> {
  try {
    return await readFile(p, 'utf8');
  } catch {
    return null;
  }
}

async function existsLink(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Writes through a symlink to its target (a dotfiles-managed unit stays a link), atomically. */
async function writeUnitFile(p: string, content: string): Promise<void> {
  let target = p;
  try {
    if ((await lstat(p)).isSymbolicLink()) target = await realpath(p);
  } catch {
    // does not exist yet
  }
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o644 });
    await chmod(tmp, 0o644);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new RotatorError('E_SERVICE', `Cannot write ${p}: ${(e as Error).message}.`, {
      file: p,
      hint: `Check that you can write to ${path.dirname(target)}, then run the command again.`,
      cause: e,
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runSteps(
  steps: PlanStep[],
  run: CommandRunner,
  ran: CommandOutcome[],
  delayMs: number,
): Promise<{ failed: CommandOutcome; index: number } | null> {
  for (const [index, s] of steps.entries()) {
    let r = await run(s.argv);
    for (let i = 0; r.code !== 0 && r.code !== NOT_FOUND && i < (s.retries ?? 0); i++) {
      await sleep(delayMs);
      r = await run(s.argv);
    }
    const outcome: CommandOutcome = { command: s.argv, code: r.code, stderr: trimStderr(r.stderr), tolerated: r.code !== 0 && s.mayFail };
    ran.push(outcome);
    if (r.code !== 0 && !s.mayFail) return { failed: outcome, index };
  }
  return null;
}

function trimStderr(s: string): string {
  const t = s.trim();
  return t.length > 500 ? t.slice(0, 500) + '...' : t;
}

function commandFailure(plan: ServicePlan, failed: CommandOutcome, rest: string[][], didFile: boolean): RotatorError {
  const tool = failed.command[0] ?? 'command';
  const cmd = shellJoin(failed.command);
  const fileNote =
    plan.action === 'install' ? (didFile ? `Wrote ${plan.unitPath}, but ` : '') : didFile ? `Removed ${plan.unitPath}, but ` : '';
  const what =
    failed.code === NOT_FOUND
      ? `"${tool}" was not found on this machine`
      : `"${cmd}" failed (exit ${failed.code})${failed.stderr ? `: ${failed.stderr.split('\n')[0]}` : ''}`;
  const byHand = rest.map(shellJoin).join(' && ');
  let hint = `Run it by hand in your desktop/login session: ${byHand}`;
  if (plan.kind === 'systemd') {
    hint +=
      failed.code === NOT_FOUND
        ? '. Without systemd (a container, WSL without systemd), start "mcp-token-rotator daemon" from your session start-up instead.'
        : /bus|XDG_RUNTIME_DIR|No medium/i.test(failed.stderr)
          ? '. "Failed to connect to bus" means there is no systemd user session here (a container, a sudo/su shell, or SSH without "loginctl enable-linger $USER").'
          : `. See "systemctl --user status ${SYSTEMD_UNIT}" and "journalctl --user -u ${SYSTEMD_UNIT}".`;
  } else {
    hint += failed.code === NOT_FOUND ? '. launchctl exists only on macOS.' : `. See "launchctl print gui/$(id -u)/${LAUNCHD_LABEL}".`;
  }
  const label = plan.action === 'install' ? 'the service is not running' : 'the service manager may still have the old unit loaded (and running)';
  return new RotatorError('E_SERVICE', `${fileNote}${what}, so ${label}.`, { file: plan.unitPath, hint });
}

function baseResult(plan: ServicePlan, dryRun: boolean): ServiceResult {
  return {
    action: plan.action,
    kind: plan.kind,
    unitPath: plan.unitPath,
    content: plan.content,
    commands: plan.commands,
    dryRun,
    written: false,
    removed: false,
    ran: [],
    error: null,
    notes: [],
  };
}

/**
 * Writes the unit and starts it. With dryRun nothing is written and nothing runs. A failed
 * command does not throw: the result carries `error` (exit 2 for the CLI) naming the unit
 * file and the commands to run by hand. Throws only for what stops it before any change
 * (Windows, an unencodable path, a CLI that is not built).
 */
export async function installService(opts: ServiceOptions): Promise<ServiceResult> {
  if (opts.platform === 'win32') throw windowsError(opts.node ?? process.execPath, opts.bin ?? defaultBin().replace(/\//g, '\\'));
  const env = opts.env ?? {};
  const { unitPath } = unitPathFor(opts.platform, opts.home, env);
  const previous = await readIfExists(unitPath);
  const plan = planInstall(opts.platform, opts.home, opts.uid, {
    env,
    ...(opts.node ? { node: opts.node } : {}),
    ...(opts.bin ? { bin: opts.bin } : {}),
    ...(opts.configFile ? { configFile: opts.configFile } : {}),
    previous,
  });
  const result = baseResult(plan, opts.dryRun);
  const bin = opts.bin ?? defaultBin();
  const binMissing = !existsSync(bin);
  if (binMissing) {
    const msg = `The CLI ${bin} does not exist yet; the service would fail to start.`;
    if (!opts.dryRun) {
      throw new RotatorError('E_SERVICE', msg, { file: bin, hint: 'Build it first ("npm run build" in the package directory), then run install-service again.' });
    }
    result.notes.push(`${msg} Run "npm run build" before installing.`);
  }
  if (previous !== null && previous === plan.content) result.notes.push(`${unitPath} is already installed with this content.`);
  if (opts.dryRun) return result;

  const run = opts.run ?? execRunner;
  const delay = opts.retryDelayMs ?? 1000;
  const before = plan.steps.filter((s) => s.phase === 'before');
  const after = plan.steps.filter((s) => s.phase === 'after');
  const f1 = await runSteps(before, run, result.ran, delay);
  if (f1) {
    result.error = commandFailure(plan, f1.failed, plan.commands, false);
    return result;
  }
  await writeUnitFile(unitPath, plan.content ?? '');
  result.written = true;
  if (plan.logDir) await mkdir(plan.logDir, { recursive: true, mode: 0o700 });
  const f2 = await runSteps(after, run, result.ran, delay);
  if (f2) result.error = commandFailure(plan, f2.failed, after.slice(f2.index).map((s) => s.argv), true);
  return result;
}

/** Stops and disables the service, removes the unit file, tells the manager. */
export async function uninstallService(opts: ServiceOptions): Promise<ServiceResult> {
  const env = opts.env ?? {};
  const { unitPath } = unitPathFor(opts.platform, opts.home, env);
  const installed = await existsLink(unitPath);
  const plan = planUninstall(opts.platform, opts.home, opts.uid, { env, installed });
  const result = baseResult(plan, opts.dryRun);
  if (!installed) result.notes.push(`${unitPath} does not exist: the service is not installed (stopping it anyway, in case it is loaded).`);
  if (opts.dryRun) return result;

  const run = opts.run ?? execRunner;
  const delay = opts.retryDelayMs ?? 1000;
  const f1 = await runSteps(plan.steps.filter((s) => s.phase === 'before'), run, result.ran, delay);
  if (f1) {
    result.error = commandFailure(plan, f1.failed, plan.commands, false);
    return result;
  }
  if (installed) {
    try {
      await rm(unitPath, { force: true });
    } catch (e) {
      result.error = new RotatorError('E_SERVICE', `Cannot remove ${unitPath}: ${(e as Error).message}.`, {
        file: unitPath,
        hint: `Remove it by hand (rm "${unitPath}"), then run: ${plan.steps.filter((s) => s.phase === 'after').map((s) => shellJoin(s.argv)).join(' && ') || 'nothing else'}`,
      });
      return result;
    }
    result.removed = true;
  }
  for (const extra of plan.alsoRemove) {
    // Only the enablement symlink, and only if it points at our unit.
    try {
      if ((await lstat(extra)).isSymbolicLink() && path.basename(await readlink(extra)) === path.basename(unitPath)) await rm(extra, { force: true });
    } catch {
      // absent: nothing to do
    }
  }
  const after = plan.steps.filter((s) => s.phase === 'after');
  const f2 = await runSteps(after, run, result.ran, delay);
  if (f2) result.error = commandFailure(plan, f2.failed, after.slice(f2.index).map((s) => s.argv), result.removed);
  return result;
}

/** The --json document. */
export function serviceJson(r: ServiceResult): Record<string, unknown> {
  return {
    action: r.action,
    kind: r.kind,
    unitPath: r.unitPath,
    dryRun: r.dryRun,
    commands: r.commands,
    written: r.written,
    ...(r.action === 'uninstall' ? { removed: r.removed } : {}),
    ran: r.ran.map((o) => ({ command: o.command, code: o.code, ...(o.code !== 0 ? { stderr: o.stderr, tolerated: o.tolerated } : {}) })),
    ...(r.dryRun && r.content !== null ? { content: r.content } : {}),
    ...(r.error ? { error: r.error.toJSON() } : {}),
  };
}
