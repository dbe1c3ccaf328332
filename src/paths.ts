import { homedir } from 'node:os';
import path from 'node:path';

export type Platform = 'linux' | 'darwin' | 'win32';

/** What path resolution depends on, so tests can point HOME at a temp dir. */
export interface PathEnv {
  platform: Platform;
  home: string;
  env: Record<string, string | undefined>;
}

export function currentPathEnv(): PathEnv {
  const p = process.platform;
  const platform: Platform = p === 'darwin' || p === 'win32' ? p : 'linux';
  // HOME first: os.homedir() ignores a changed HOME on some platforms, and tests rely on it.
  const home = process.env.HOME || process.env.USERPROFILE || homedir();
  return { platform, home, env: process.env };
}

const APP = 'mcp-token-rotator';

export function settingsPath(pe: PathEnv = currentPathEnv()): string {
  switch (pe.platform) {
    case 'darwin':
      return path.join(pe.home, 'Library', 'Application Support', APP, 'config.json');
    case 'win32':
      return path.win32.join(pe.env.APPDATA || path.win32.join(pe.home, 'AppData', 'Roaming'), APP, 'config.json');
    default:
      return path.join(nonEmpty(pe.env.XDG_CONFIG_HOME) ?? path.join(pe.home, '.config'), APP, 'config.json');
  }
}

export function stateDir(pe: PathEnv = currentPathEnv()): string {
  switch (pe.platform) {
    case 'darwin':
      return path.join(pe.home, 'Library', 'Application Support', APP, 'state');
    case 'win32':
      return path.win32.join(pe.env.LOCALAPPDATA || path.win32.join(pe.home, 'AppData', 'Local'), APP, 'state');
    default:
      return path.join(nonEmpty(pe.env.XDG_STATE_HOME) ?? path.join(pe.home, '.local', 'state'), APP);
  }
}

/** Files inside the state directory. */
export function statePaths(dir: string) {
  return {
    dir,
    db: path.join(dir, 'rotator.db'),
    lock: path.join(dir, 'rotation.lock'),
    daemonLock: path.join(dir, 'daemon.lock'),
    // Windows has no Unix sockets in a directory: there this file records the daemon's
    // random pipe name (src/ipc/endpoint.ts), so another user cannot squat a guessable one.
    socket: process.platform === 'win32' ? path.join(dir, 'control.pipe') : path.join(dir, 'control.sock'),
    backups: path.join(dir, 'backups'),
  };
}
export type StatePaths = ReturnType<typeof statePaths>;

/** `~` and `~/x` expanded against the given home; other paths returned as they are. */
export function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/') || p.startsWith('~\\')) return path.join(home, p.slice(2));
  return p;
}

/** Show paths under HOME as `~/...` in human output. */
export function tildify(p: string, home: string): string {
  return p === home ? '~' : p.startsWith(home + path.sep) ? '~' + p.slice(home.length) : p;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s && s.trim() !== '' ? s : undefined;
}
