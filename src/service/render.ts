/**
 * Rendering the unit templates (pure but for reading the template): absolute paths quoted
 * and escaped for systemd's and launchd's own syntaxes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RotatorError } from '../errors.js';
import { packageVersion } from '../version.js';
import { packageRoot, templatePath, type ServiceKind } from './paths.js';

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
  /**
   * The package version, written into a comment: after an upgrade the rendered unit differs,
   * so re-running install-service restarts the service on the new code. Default: this package's.
   */
  version?: string;
}

/**
 * Node options the service starts the daemon with (and `npm start`, and the bench). The idle
 * daemon's memory is mostly V8's young generation grown to its default 16 MiB semi-spaces by
 * the start-up scan and never handed back; capped at 1 MiB the idle daemon is 8-17 MiB smaller
 * (docs/benchmarks.md, "Footprint"). It must be a command-line option: set at run time
 * (v8.setFlagsFromString) it does not resize a heap that already exists (measured).
 */
export const DAEMON_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=1'];

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
      hint: 'Run "mcp-token-rotator install-service" from the installed package ("npm run install-global" in a clone), or after "npm run build" in a checkout.',
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
  const version = vars.version ?? packageVersion();
  checkValue('version', version, false);

  let out: string;
  if (kind === 'systemd') {
    const env = Object.entries(vars.env ?? {}).map(([k, v]) => `Environment=${systemdQuoted(`${k}=${v}`)}`);
    out = fill(template, {
      // Replaced first so that a path containing "@NODE@" cannot be rewritten again.
      '@ENVIRONMENT@\n': env.length ? env.join('\n') + '\n' : '',
      '@DOCURL@': docUrl().replace(/%/g, '%%'),
      '@NODE@': systemdExecPath(vars.node),
      '@NODEOPTS@': DAEMON_NODE_OPTIONS.map((a) => ' ' + systemdExecWord(a)).join(''),
      '@BIN@': systemdExecWord(vars.bin),
      '@ARGS@': (vars.args ?? []).map((a) => ' ' + systemdExecWord(a)).join(''),
      '@RWPATHS@': (vars.readWritePaths ?? []).map((p) => ' ' + systemdQuoted('-' + p)).join(''),
      '@VERSION@': version.replace(/%/g, '%%'),
    });
  } else {
    out = fill(template, {
      '@NODE@': xmlEscape(vars.node),
      '@NODEOPTS@': DAEMON_NODE_OPTIONS.map((a) => `\n\t\t<string>${xmlEscape(a)}</string>`).join(''),
      '@BIN@': xmlEscape(vars.bin),
      '@ARGS@': (vars.args ?? []).map((a) => `\n\t\t<string>${xmlEscape(a)}</string>`).join(''),
      '@HOME@': xmlEscape(vars.home),
      '@LOGDIR@': xmlEscape(vars.logDir),
      '@PATH@': xmlEscape(vars.pathVar ?? defaultLaunchdPath(vars.node)),
      // Inside an XML comment: "--" is not allowed there.
      '@VERSION@': xmlEscape(version).replace(/-{2,}/g, '-'),
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

