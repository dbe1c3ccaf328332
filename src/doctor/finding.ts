/** What every doctor check returns, and the helpers their messages share. */

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

export const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');
