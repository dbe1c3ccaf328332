/**
 * File checks: configs holding a token must be private, the directories on the way to them
 * not writable by everyone, the state directory 0700 with 0600 files.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { octal, shq, type Finding } from './finding.js';

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
