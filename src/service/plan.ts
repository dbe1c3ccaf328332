/**
 * Planning install-service / uninstall-service per platform (pure): the unit's content and
 * path, and the systemctl / launchctl commands in order.
 */
import path from 'node:path';
import type { Platform } from '../paths.js';
import { defaultBin, launchdLogDir, nonEmptyAbs, unitPathFor, windowsError, LAUNCHD_LABEL, SYSTEMD_UNIT, type ServiceKind } from './paths.js';
import { renderUnit } from './render.js';

export interface PlanStep {
  argv: string[];
  /** 'before' runs before the unit file is written/removed, 'after' after. */
  phase: 'before' | 'after';
  /** A failure is expected and harmless (e.g. stopping a service that is not loaded). */
  mayFail: boolean;
  /** Extra attempts, 1 s apart (launchctl bootstrap right after bootout can fail with EIO). */
  retries?: number;
  /** Succeeds only when stdout also matches (launchctl print exits 0 for a loaded agent that is not running). */
  expectStdout?: RegExp;
  /** The service manager's "is it active" question: its failure means the service is not running. */
  check?: boolean;
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

/**
 * "Installed" means the service manager reports the service active, not that a unit file
 * exists: a unit left by a failed install serves nothing. Exit 0 from `systemctl --user
 * is-active`; for launchd, `launchctl print` (exit 0 once loaded) saying `state = running`.
 */
export function activeCheck(platform: Platform, uid: number): PlanStep | null {
  if (platform === 'win32') return null;
  if (platform === 'darwin') {
    return { argv: ['launchctl', 'print', `gui/${uid}/${LAUNCHD_LABEL}`], phase: 'after', mayFail: false, retries: 3, expectStdout: /^\s*state = running\s*$/m, check: true };
  }
  return { argv: ['systemctl', '--user', 'is-active', SYSTEMD_UNIT], phase: 'after', mayFail: false, retries: 3, check: true };
}

/**
 * Undoing a failed install (pure): what runs before and after the unit file is removed or
 * put back. `restore`: a unit that was installed and active before is put back and started
 * again; otherwise the unit goes, with the link `enable` made.
 */
export function planRollback(platform: Platform, home: string, uid: number, opts: { env?: Record<string, string | undefined>; restore: boolean }): { before: PlanStep[]; after: PlanStep[]; alsoRemove: string[] } {
  const { kind, unitPath } = unitPathFor(platform, home, opts.env ?? {});
  if (kind === 'systemd') {
    if (opts.restore) {
      return {
        before: [],
        after: [
          { argv: ['systemctl', '--user', 'daemon-reload'], phase: 'after', mayFail: true },
          { argv: ['systemctl', '--user', 'restart', SYSTEMD_UNIT], phase: 'after', mayFail: true },
        ],
        alsoRemove: [],
      };
    }
    return {
      before: [{ argv: ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT], phase: 'before', mayFail: true }],
      after: [
        { argv: ['systemctl', '--user', 'daemon-reload'], phase: 'after', mayFail: true },
        { argv: ['systemctl', '--user', 'reset-failed', SYSTEMD_UNIT], phase: 'after', mayFail: true },
      ],
      alsoRemove: [path.posix.join(path.posix.dirname(unitPath), 'default.target.wants', SYSTEMD_UNIT)],
    };
  }
  return {
    before: [{ argv: ['launchctl', 'bootout', `gui/${uid}/${LAUNCHD_LABEL}`], phase: 'before', mayFail: true }],
    after: opts.restore ? [{ argv: ['launchctl', 'bootstrap', `gui/${uid}`, unitPath], phase: 'after', mayFail: true, retries: 3 }] : [],
    alsoRemove: [],
  };
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

function isUnder(p: string, dir: string): boolean {
  const rel = path.posix.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.posix.isAbsolute(rel));
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
    steps.push(activeCheck(platform, uid) as PlanStep);
  } else {
    logDir = launchdLogDir(home);
    content = renderUnit('launchd', { node, bin, home, logDir, args });
    const target = `gui/${uid}`;
    steps.push({ argv: ['launchctl', 'bootout', `${target}/${LAUNCHD_LABEL}`], phase: 'before', mayFail: true });
    steps.push({ argv: ['launchctl', 'enable', `${target}/${LAUNCHD_LABEL}`], phase: 'after', mayFail: false });
    steps.push({ argv: ['launchctl', 'bootstrap', target, unitPath], phase: 'after', mayFail: false, retries: 3 });
    steps.push(activeCheck(platform, uid) as PlanStep);
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

