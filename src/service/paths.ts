/**
 * Where things are for install-service: the package's unit templates, the CLI the service
 * runs, and where the unit goes per platform. The CLI path is chosen to survive
 * `npm update -g`: the global bin link (which npm re-points at every install) rather than the
 * file behind it, whenever the CLI was started through that link.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RotatorError } from '../errors.js';
import type { Platform } from '../paths.js';
import { APP, packageRootOrNull } from '../version.js';

export type ServiceKind = 'systemd' | 'launchd';

export const SYSTEMD_UNIT = 'mcp-token-rotator.service';
export const LAUNCHD_LABEL = 'com.mcp-token-rotator.daemon';

const TEMPLATE_FILES: Record<ServiceKind, string> = {
  systemd: path.join('systemd', SYSTEMD_UNIT),
  launchd: path.join('launchd', `${LAUNCHD_LABEL}.plist`),
};

/** The directory holding this package's package.json (and the unit templates). */
export function packageRoot(): string {
  const root = packageRootOrNull();
  if (root === null) {
    throw new RotatorError('E_SERVICE', `Cannot find the ${APP} package directory above ${fileURLToPath(import.meta.url)}.`, {
      hint: 'Reinstall the package; its package.json and the systemd/ and launchd/ templates must sit beside dist/.',
    });
  }
  return root;
}

export function templatePath(kind: ServiceKind): string {
  return path.join(packageRoot(), TEMPLATE_FILES[kind]);
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * The CLI the service runs. When this process was started through a link to the built CLI
 * (npm's global bin link, e.g. /usr/local/bin/mcp-token-rotator, or an `npm link`), that
 * link: npm re-points it at every install, so a unit naming it runs whatever version
 * `npm update -g` put there. Otherwise the package's dist/src/cli/main.js, symlinks resolved.
 */
export function defaultBin(argv1: string | undefined = process.argv[1]): string {
  const main = realOrSelf(path.join(packageRoot(), 'dist', 'src', 'cli', 'main.js'));
  if (argv1 !== undefined && argv1 !== '') {
    const invoked = path.resolve(argv1);
    if (invoked !== main && realOrSelf(invoked) === main) return invoked;
  }
  return main;
}

/**
 * A note when the package runs from a place that goes away: npx's cache (`~/.npm/_npx/...`)
 * is pruned at will, and a unit pointing into it would stop starting one day.
 */
export function transientInstallNote(bin: string): string | null {
  if (!/[\\/]_npx[\\/]/.test(realOrSelf(bin))) return null;
  return `${bin} is in npx's cache, which npm may delete at any time; install the package for good ("npm run install-global" in a clone of ${APP}) and run "${APP} install-service" from it.`;
}

export function nonEmptyAbs(s: string | undefined): string | undefined {
  return s && s.trim() !== '' && path.posix.isAbsolute(s) ? s : undefined;
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

export function windowsError(node = process.execPath, bin = '<package>\\dist\\src\\cli\\main.js'): RotatorError {
  return new RotatorError('E_SERVICE', 'install-service supports systemd (Linux) and launchd (macOS); Windows has neither, so nothing was installed.', {
    hint:
      `Use Task Scheduler: create a task triggered "At log on" for your user that runs "${node}" with the arguments "${bin}" daemon ` +
      '(or put "mcp-token-rotator daemon" in a script that runs at logon).',
  });
}
