/**
 * install-service / uninstall-service: the systemd user unit (Linux) or the launchd agent
 * (macOS) rendered from the templates in `systemd/` and `launchd/`, with absolute paths
 * filled in. Rendering and planning are pure; the I/O (write the unit, run systemctl or
 * launchctl through execFile, never a shell) is a thin layer with an injectable command
 * runner so tests record commands instead of running them.
 */
import { execFile } from 'node:child_process';
import { childEnv } from '../process/child-env.js';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, realpath, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RotatorError } from '../errors.js';
import type { Platform } from '../paths.js';
import { packageVersion } from '../version.js';
import { defaultBin, transientInstallNote, unitPathFor, windowsError, LAUNCHD_LABEL, SYSTEMD_UNIT, type ServiceKind } from './paths.js';
import { activeCheck, planInstall, planRollback, planUninstall, type PlanStep, type ServicePlan } from './plan.js';

export * from './paths.js';
export * from './render.js';
export * from './plan.js';

export type CommandRunner = (cmd: string[]) => Promise<{ code: number; stderr: string; stdout?: string }>;

/** Exit code used when the program does not exist (as a shell would say). */
export const NOT_FOUND = 127;

/** Runs argv with execFile (no shell). A missing program resolves with code 127. */
export const execRunner: CommandRunner = (cmd) =>
  new Promise((resolve) => {
    const [file, ...args] = cmd;
    if (file === undefined) return resolve({ code: NOT_FOUND, stderr: 'empty command' });
    execFile(file, args, { timeout: 60_000, windowsHide: true, maxBuffer: 1024 * 1024, env: childEnv(process.env) }, (error, stdout, stderr) => {
      if (!error) return resolve({ code: 0, stderr: String(stderr), stdout: String(stdout) });
      const e = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
      if (e.code === 'ENOENT') return resolve({ code: NOT_FOUND, stderr: `${file}: command not found` });
      if (typeof e.code === 'number') return resolve({ code: e.code, stderr: String(stderr), stdout: String(stdout) });
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
  /** The service manager's answer to "is it active" (first line of stdout), for checks. */
  answer?: string;
  /** A check that exited 0 but did not say the service runs (launchctl print of a loaded, stopped agent). */
  notRunning?: boolean;
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
  /** Set when a command failed; a failed install is undone first (see `rolledBack`). */
  error: RotatorError | null;
  /** install: a failure was undone, the new unit `removed` again or the previous one `restored`. */
  rolledBack: 'removed' | 'restored' | null;
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
    const ok = (r: { code: number; stdout?: string }) => r.code === 0 && (!s.expectStdout || s.expectStdout.test(r.stdout ?? ''));
    let r = await run(s.argv);
    for (let i = 0; !ok(r) && r.code !== NOT_FOUND && i < (s.retries ?? 0); i++) {
      await sleep(delayMs);
      r = await run(s.argv);
    }
    const good = ok(r);
    const outcome: CommandOutcome = { command: s.argv, code: r.code, stderr: trimStderr(r.stderr), tolerated: !good && s.mayFail };
    if (s.check) outcome.answer = (r.stdout ?? '').trim().split('\n')[0] ?? '';
    if (r.code === 0 && !good) outcome.notRunning = true;
    ran.push(outcome);
    if (!good && !s.mayFail) return { failed: outcome, index };
  }
  return null;
}

/**
 * Whether the service manager reports the service active right now (one question, no
 * retries): what "the service is installed" means for broker mode and doctor. False on
 * Windows, without a service manager, or when it cannot be asked.
 */
export async function serviceActive(opts: { platform: Platform; uid: number; run?: CommandRunner }): Promise<boolean> {
  const check = activeCheck(opts.platform, opts.uid);
  if (!check) return false;
  const ran: CommandOutcome[] = [];
  return (await runSteps([{ ...check, retries: 0 }], opts.run ?? execRunner, ran, 0)) === null;
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

/** A failed install, undone: what failed, what is left (nothing, or the previous unit), what to do. */
function installFailure(plan: ServicePlan, failed: CommandOutcome, rolledBack: 'removed' | 'restored' | null, restarted: boolean): RotatorError {
  const tool = failed.command[0] ?? 'command';
  const cmd = shellJoin(failed.command);
  const systemd = plan.kind === 'systemd';
  const check = failed.answer !== undefined;
  const what =
    failed.code === NOT_FOUND
      ? `"${tool}" was not found on this machine`
      : check
        ? `the service manager does not report the service running after starting it ("${cmd}" ${failed.notRunning ? 'shows no running process' : `said ${failed.answer || `exit ${failed.code}`}`})`
        : `"${cmd}" failed (exit ${failed.code})${failed.stderr ? `: ${failed.stderr.split('\n')[0]}` : ''}`;
  const left =
    rolledBack === 'removed'
      ? ` Removed ${plan.unitPath} again: nothing is left installed.`
      : rolledBack === 'restored'
        ? ` Put the previous ${plan.unitPath} back${restarted ? ' and started it again' : ''}.`
        : '';
  const again = 'then run "mcp-token-rotator install-service" again';
  let hint: string;
  if (failed.code === NOT_FOUND) {
    hint = systemd
      ? 'Without systemd (a container, WSL without systemd), start "mcp-token-rotator daemon" from your session start-up instead.'
      : 'launchctl exists only on macOS; elsewhere start "mcp-token-rotator daemon" from your session start-up.';
  } else if (systemd && /bus|XDG_RUNTIME_DIR|No medium/i.test(failed.stderr)) {
    hint = `"Failed to connect to bus" means there is no systemd user session here (a container, a sudo/su shell, or SSH without "loginctl enable-linger $USER"): run "mcp-token-rotator install-service" from your desktop/login session instead.`;
  } else if (check) {
    hint = systemd
      ? `See why it stopped: journalctl --user -u ${SYSTEMD_UNIT} (or run "mcp-token-rotator daemon" in a terminal to see its error); fix that, ${again}.`
      : `See why it stopped: ~/Library/Logs/mcp-token-rotator/ (or run "mcp-token-rotator daemon" in a terminal to see its error); fix that, ${again}.`;
  } else {
    hint = systemd
      ? `See "systemctl --user status ${SYSTEMD_UNIT}" and "journalctl --user -u ${SYSTEMD_UNIT}"; fix the cause, ${again}.`
      : `See "launchctl print gui/$(id -u)/${LAUNCHD_LABEL}"; fix the cause, ${again}.`;
  }
  return new RotatorError('E_SERVICE', `${what}, so the service is not running.${left}`, { file: plan.unitPath, hint });
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
    rolledBack: null,
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
  const transient = transientInstallNote(bin);
  if (transient) result.notes.push(transient);
  if (previous !== null && previous === plan.content) result.notes.push(`${unitPath} is already installed with this content.`);
  if (opts.dryRun) return result;

  const run = opts.run ?? execRunner;
  const delay = opts.retryDelayMs ?? 1000;
  const before = plan.steps.filter((s) => s.phase === 'before');
  const after = plan.steps.filter((s) => s.phase === 'after');
  // What a failure must put back: a unit that was installed and running stays so; anything
  // else this install writes (the unit, the link "enable" makes, the log dir) goes again.
  const unitIsLink = await lstat(unitPath).then((s) => s.isSymbolicLink(), () => false);
  const wasActive = previous !== null && (await serviceActive({ platform: opts.platform, uid: opts.uid, run }));
  const links = planRollback(opts.platform, opts.home, opts.uid, { env, restore: false }).alsoRemove;
  const linksBefore = new Set((await Promise.all(links.map(async (l) => ((await existsLink(l)) ? l : null)))).filter((l) => l !== null));
  const logDirBefore = plan.logDir ? await existsLink(plan.logDir) : true;
  // Deepest first: the wants directory "enable" may make, then the unit's own directories.
  const createdDirs = [...(await Promise.all(links.map((l) => missingDirs(path.dirname(l), path.dirname(unitPath))))).flat(), ...(await missingDirs(path.dirname(unitPath), opts.home))];
  const f1 = await runSteps(before, run, result.ran, delay);
  if (f1) {
    result.error = commandFailure(plan, f1.failed, plan.commands, false);
    return result;
  }
  await writeUnitFile(unitPath, plan.content ?? '');
  result.written = true;
  if (plan.logDir) await mkdir(plan.logDir, { recursive: true, mode: 0o700 });
  const f2 = await runSteps(after, run, result.ran, delay);
  if (f2) {
    // Contract: "installed" means active; a failed install leaves no unit behind (it would
    // count as installed for whoever looks at the file, and serve nothing).
    const restore = previous !== null && (wasActive || unitIsLink);
    const rb = planRollback(opts.platform, opts.home, opts.uid, { env, restore: wasActive });
    await runSteps(rb.before, run, result.ran, 0);
    if (restore) {
      await writeUnitFile(unitPath, previous);
      result.rolledBack = 'restored';
    } else {
      await rm(unitPath, { force: true });
      result.rolledBack = 'removed';
    }
    result.written = false;
    for (const l of rb.alsoRemove) if (!linksBefore.has(l)) await removeOwnLink(l, unitPath);
    if (plan.logDir && !logDirBefore) await rmdir(plan.logDir).catch(() => undefined);
    for (const d of createdDirs) await rmdir(d).catch(() => undefined); // deepest first; only if left empty
    await runSteps(rb.after, run, result.ran, delay);
    result.error = installFailure(plan, f2.failed, result.rolledBack, wasActive);
  }
  return result;
}

/** The directories from `dir` up to (not including) `home` that do not exist yet, deepest first. */
async function missingDirs(dir: string, home: string): Promise<string[]> {
  const out: string[] = [];
  for (let d = dir; d !== home && d !== path.dirname(d) && !(await existsLink(d)); d = path.dirname(d)) out.push(d);
  return out;
}

/** Removes `link` only if it is a symlink to our unit (what "systemctl enable" makes). */
async function removeOwnLink(link: string, unitPath: string): Promise<void> {
  try {
    if ((await lstat(link)).isSymbolicLink() && path.basename(await readlink(link)) === path.basename(unitPath)) await rm(link, { force: true });
  } catch {
    // absent: nothing to do
  }
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
  // Only the enablement symlink, and only if it points at our unit.
  for (const extra of plan.alsoRemove) await removeOwnLink(extra, unitPath);
  const after = plan.steps.filter((s) => s.phase === 'after');
  const f2 = await runSteps(after, run, result.ran, delay);
  if (f2) result.error = commandFailure(plan, f2.failed, after.slice(f2.index).map((s) => s.argv), result.removed);
  return result;
}

/** The --json document. */
export function serviceJson(r: ServiceResult): Record<string, unknown> {
  return {
    action: r.action,
    version: packageVersion(),
    kind: r.kind,
    unitPath: r.unitPath,
    dryRun: r.dryRun,
    commands: r.commands,
    written: r.written,
    ...(r.action === 'uninstall' ? { removed: r.removed } : {}),
    ...(r.rolledBack ? { rolledBack: r.rolledBack } : {}),
    ran: r.ran.map((o) => ({ command: o.command, code: o.code, ...(o.code !== 0 ? { stderr: o.stderr, tolerated: o.tolerated } : {}) })),
    ...(r.dryRun && r.content !== null ? { content: r.content } : {}),
    ...(r.error ? { error: r.error.toJSON() } : {}),
  };
}
