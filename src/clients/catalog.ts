import path from 'node:path';
import type { PathEnv } from '../paths.js';
import type { FileFormat } from './formats.js';

export type ClientId =
  | 'claude-desktop'
  | 'claude-code'
  | 'cursor'
  | 'vscode'
  | 'windsurf'
  | 'zed'
  | 'gemini'
  | 'codex'
  | 'cline'
  | 'roo'
  | 'lmstudio'
  | 'continue'
  | 'goose'
  | 'shell'
  | 'project';

/** How a running client picks up a rewritten config (contract guarantee 8). */
export type Reload = 'self' | 'quit' | 'restart' | 'new-shell';

export interface ClientSpec {
  id: ClientId;
  name: string;
  format: FileFormat;
  reload: Reload;
  /** What to tell the user after a rotation. */
  restartHint: string;
  /** Writers of this file take a proper-lockfile style `<file>.lock` directory. */
  lockDir: boolean;
  /** Candidate paths for this OS; the ones that exist are the client's configs. */
  paths(pe: PathEnv): string[];
}

const RESTART = {
  self: (n: string) => `${n} restarts a changed server by itself; nothing to do.`,
  quit: (n: string) => `${n} must be quit fully (tray or menu bar, Quit; closing the window is not enough) and started again.`,
  restart: (n: string, how: string) => `${n} needs a restart or a reconnect of the server (${how}).`,
};

function xdgConfigDirs(pe: PathEnv): string[] {
  const dirs = [path.join(pe.home, '.config')];
  const x = pe.env.XDG_CONFIG_HOME;
  if (x && x.trim() !== '' && path.resolve(x) !== dirs[0]) dirs.push(x);
  return dirs;
}

/** The per-OS "application data" roots a desktop app keeps its settings under. */
function appDataDirs(pe: PathEnv): string[] {
  switch (pe.platform) {
    case 'darwin':
      return [path.join(pe.home, 'Library', 'Application Support')];
    case 'win32':
      return [pe.env.APPDATA || path.win32.join(pe.home, 'AppData', 'Roaming')];
    default:
      return xdgConfigDirs(pe);
  }
}

const join = (pe: PathEnv, ...parts: string[]) => (pe.platform === 'win32' ? path.win32.join(...parts) : path.join(...parts));

function vscodeUserDirs(pe: PathEnv): string[] {
  return appDataDirs(pe).flatMap((d) => ['Code', 'Code - Insiders', 'VSCodium'].map((app) => join(pe, d, app, 'User')));
}

export const CATALOG: readonly ClientSpec[] = [
  {
    id: 'claude-desktop',
    name: 'Claude Desktop',
    format: 'json',
    reload: 'quit',
    restartHint: RESTART.quit('Claude Desktop'),
    lockDir: false,
    paths: (pe) => {
      const file = 'claude_desktop_config.json';
      if (pe.platform === 'win32') {
        const local = pe.env.LOCALAPPDATA || path.win32.join(pe.home, 'AppData', 'Local');
        return [
          ...appDataDirs(pe).map((d) => join(pe, d, 'Claude', file)),
          // The Microsoft Store (MSIX) build keeps a virtualised copy of %APPDATA%.
          join(pe, local, 'Packages', 'Claude_pzs8sxrjxfjjc', 'LocalCache', 'Roaming', 'Claude', file),
        ];
      }
      return appDataDirs(pe).map((d) => join(pe, d, 'Claude', file));
    },
  },
  {
    id: 'claude-code',
    name: 'Claude Code',
    format: 'json',
    reload: 'restart',
    restartHint: RESTART.restart('Claude Code', 'run /mcp and reconnect, or start a new session'),
    lockDir: false,
    paths: (pe) => {
      const out = [join(pe, pe.home, '.claude.json')];
      const dir = pe.env.CLAUDE_CONFIG_DIR;
      if (dir && dir.trim() !== '') out.push(join(pe, dir, '.claude.json'));
      return out;
    },
  },
  {
    id: 'cursor',
    name: 'Cursor',
    format: 'json',
    reload: 'self',
    restartHint: RESTART.self('Cursor'),
    lockDir: false,
    paths: (pe) => [join(pe, pe.home, '.cursor', 'mcp.json')],
  },
  {
    id: 'vscode',
    name: 'VS Code',
    format: 'jsonc',
    reload: 'restart',
    restartHint: RESTART.restart('VS Code', 'run "MCP: List Servers", pick the server, Restart'),
    lockDir: false,
    paths: (pe) => vscodeUserDirs(pe).map((d) => join(pe, d, 'mcp.json')),
  },
  {
    id: 'windsurf',
    name: 'Windsurf',
    format: 'json',
    reload: 'restart',
    restartHint: RESTART.restart('Windsurf', 'press Refresh in the MCP panel'),
    lockDir: false,
    paths: (pe) => [join(pe, pe.home, '.codeium', 'windsurf', 'mcp_config.json')],
  },
  {
    id: 'zed',
    name: 'Zed',
    format: 'jsonc',
    reload: 'self',
    restartHint: RESTART.self('Zed'),
    lockDir: false,
    paths: (pe) =>
      pe.platform === 'win32'
        ? appDataDirs(pe).map((d) => join(pe, d, 'Zed', 'settings.json'))
        : xdgConfigDirs(pe).map((d) => join(pe, d, 'zed', 'settings.json')),
  },
  {
    id: 'gemini',
    name: 'Gemini CLI',
    format: 'jsonc',
    reload: 'restart',
    restartHint: RESTART.restart('Gemini CLI', 'quit and start gemini again'),
    lockDir: false,
    paths: (pe) => [join(pe, pe.home, '.gemini', 'settings.json')],
  },
  {
    id: 'codex',
    name: 'Codex CLI',
    format: 'toml',
    reload: 'restart',
    restartHint: RESTART.restart('Codex CLI', 'quit and start codex again'),
    lockDir: false,
    paths: (pe) => {
      const ch = pe.env.CODEX_HOME;
      return [ch && ch.trim() !== '' ? join(pe, ch, 'config.toml') : join(pe, pe.home, '.codex', 'config.toml')];
    },
  },
  {
    id: 'cline',
    name: 'Cline',
    format: 'json',
    reload: 'self',
    restartHint: RESTART.self('Cline'),
    lockDir: true,
    paths: (pe) => [
      join(pe, pe.home, '.cline', 'data', 'settings', 'cline_mcp_settings.json'),
      ...vscodeUserDirs(pe).map((d) => join(pe, d, 'globalStorage', 'saoudrizwan.claude-dev', 'settings', 'cline_mcp_settings.json')),
    ],
  },
  {
    id: 'roo',
    name: 'Roo Code',
    format: 'json',
    reload: 'self',
    restartHint: RESTART.self('Roo Code'),
    lockDir: true,
    paths: (pe) =>
      vscodeUserDirs(pe).map((d) => join(pe, d, 'globalStorage', 'rooveterinaryinc.roo-cline', 'settings', 'mcp_settings.json')),
  },
  {
    id: 'lmstudio',
    name: 'LM Studio',
    format: 'json',
    reload: 'restart',
    restartHint: RESTART.restart('LM Studio', 'toggle the server off and on in the Program tab'),
    lockDir: false,
    paths: (pe) => [join(pe, pe.home, '.lmstudio', 'mcp.json')],
  },
  {
    id: 'continue',
    name: 'Continue',
    format: 'yaml',
    reload: 'restart',
    restartHint: RESTART.restart('Continue', 'reload the editor window'),
    lockDir: false,
    paths: (pe) => [join(pe, pe.home, '.continue', 'config.yaml')],
  },
  {
    id: 'goose',
    name: 'Goose',
    format: 'yaml',
    reload: 'restart',
    restartHint: RESTART.restart('Goose', 'start a new goose session'),
    lockDir: false,
    paths: (pe) =>
      pe.platform === 'win32'
        ? appDataDirs(pe).map((d) => join(pe, d, 'Block', 'goose', 'config', 'config.yaml'))
        : xdgConfigDirs(pe).map((d) => join(pe, d, 'goose', 'config.yaml')),
  },
  {
    id: 'shell',
    name: 'Shell start-up file',
    format: 'shell',
    reload: 'new-shell',
    restartHint: 'Open a new shell (or run "exec $SHELL") so the variable holds the new token; restart programs started from the old shell.',
    lockDir: false,
    paths: (pe) => {
      if (pe.platform === 'win32') return [];
      const files = ['.bashrc', '.bash_profile', '.zshrc', '.zshenv', '.profile'].map((f) => path.join(pe.home, f));
      const zd = pe.env.ZDOTDIR;
      if (zd && zd.trim() !== '' && path.resolve(zd) !== path.resolve(pe.home)) files.push(path.join(zd, '.zshrc'), path.join(zd, '.zshenv'));
      return [...files, ...xdgConfigDirs(pe).map((d) => path.join(d, 'fish', 'config.fish'))];
    },
  },
];

export const PROJECT_CLIENT: ClientSpec = {
  id: 'project',
  name: 'Project config',
  format: 'jsonc',
  reload: 'restart',
  restartHint: 'Restart the client that uses this project config (or reconnect its MCP server).',
  lockDir: false,
  paths: () => [],
};

export function clientById(id: string): ClientSpec {
  return CATALOG.find((c) => c.id === id) ?? PROJECT_CLIENT;
}

/** Format of a file named by extraConfigs, from its name. */
export function formatForPath(p: string): FileFormat {
  const base = path.basename(p).toLowerCase();
  const ext = path.extname(base);
  if (ext === '.toml') return 'toml';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  if (ext === '.fish') return 'fish';
  if (base === '.env' || base.startsWith('.env.') || ext === '.env' || base === '.envrc') return base === '.envrc' ? 'shell' : 'dotenv';
  if (['.bashrc', '.bash_profile', '.zshrc', '.zshenv', '.profile'].includes(base) || ext === '.sh' || ext === '.zsh' || ext === '.bash') return 'shell';
  return 'jsonc';
}

/** The client a project-level file belongs to, from where it lives. */
export function clientForProjectPath(p: string): ClientId {
  const norm = p.split(path.sep).join('/');
  if (norm.endsWith('/.vscode/mcp.json')) return 'vscode';
  if (norm.endsWith('/.cursor/mcp.json')) return 'cursor';
  if (norm.endsWith('/.mcp.json')) return 'claude-code';
  if (norm.endsWith('/.gemini/settings.json')) return 'gemini';
  if (norm.endsWith('/.codex/config.toml')) return 'codex';
  if (norm.endsWith('/.zed/settings.json')) return 'zed';
  const f = formatForPath(p);
  if (f === 'dotenv' || f === 'shell' || f === 'fish') return 'shell';
  return 'project';
}
