/**
 * May the current token be written into this file? The heal's safeguards, shared by the
 * plaintext heal (rotation/heal.ts) and broker mode's (broker/heal.ts), and doctor: a pure
 * verdict, its message, and the thin I/O that gathers the facts.
 */
import { realpath, stat } from 'node:fs/promises';
import type { Context } from '../context.js';
import { findGitRoot } from '../doctor/git.js';
import { shq } from '../doctor/finding.js';

export interface HealRefused {
  fingerprint: string;
  file: string;
  reasons: HealRefusal[];
  message: string;
  fix: string;
}

// =======================================================================================
// Pure

/** `launch-changed` (broker heal): the restored entry runs another command or goes to another URL than the one converted. */
export type HealRefusal = 'unknown-location' | 'not-owner' | 'readable-by-others' | 'in-git' | 'unreadable' | 'launch-changed';

export interface HealFacts {
  file: string;
  /** The file held this token's lineage before (recorded when a token of it was rotated). */
  known: boolean;
  /** null: no such notion (Windows), or the file could not be looked at (see `unreadable`). */
  uid: number | null;
  userUid: number | null;
  mode: number | null;
  gitRoot: string | null;
  unreadable?: string;
}

export type HealVerdict = { heal: true } | { heal: false; reasons: HealRefusal[]; why: string[] };

/**
 * A retired token reappearing is a client restoring its own copy, or a trap: someone plants
 * the dead token in a file the watcher reads (a cloned repo's `.mcp.json`, a shared
 * directory) to be handed the live one by the next heal and every rotation after. So the
 * current token goes only where the lineage lived before, into a file only the user owns
 * and reads, outside any git work tree.
 */
export function healVerdict(f: HealFacts): HealVerdict {
  const reasons: HealRefusal[] = [];
  const why: string[] = [];
  if (f.unreadable !== undefined) {
    reasons.push('unreadable');
    why.push(`it cannot be looked at (${f.unreadable})`);
  }
  if (!f.known) {
    reasons.push('unknown-location');
    why.push('it never held this token before (no rotation wrote it)');
  }
  if (f.uid !== null && f.userUid !== null && f.uid !== f.userUid) {
    reasons.push('not-owner');
    why.push(`it is owned by another user (uid ${f.uid})`);
  }
  if (f.mode !== null && (f.mode & 0o044) !== 0) {
    reasons.push('readable-by-others');
    const who = [f.mode & 0o040 ? 'its group' : '', f.mode & 0o004 ? 'everyone' : ''].filter(Boolean).join(' and ');
    why.push(`${who} can read it (mode ${(f.mode & 0o777).toString(8).padStart(4, '0')})`);
  }
  if (f.gitRoot !== null) {
    reasons.push('in-git');
    why.push(`it is inside the git work tree ${f.gitRoot}`);
  }
  return reasons.length ? { heal: false, reasons, why } : { heal: true };
}

/** The message and fix for a refused heal (log line, notification, doctor). */
export function describeRefusal(fp: string, successor: string | null, file: string, v: Extract<HealVerdict, { heal: false }>): { message: string; fix: string } {
  const message = `Retired token ${fp} appeared in ${file}; it was left untouched and the current token${successor ? ` (${successor})` : ''} was not written there, because ${v.why.join(', and ')}.`;
  const onlyMode = v.reasons.every((r) => r === 'readable-by-others');
  const fix = onlyMode
    ? `If ${file} is yours, make it private: chmod 600 ${shq(file)}; the daemon then puts the current token back (at its next look, or on SIGHUP).`
    : `Find out who put the token in ${file} (it is dead, so it grants nothing) and remove it. If the file is yours and should hold the token, make it private (chmod 600), keep it out of git, and put the current token in by hand: it is tracked from then on.`;
  return { message, fix };
}

// =======================================================================================
// I/O

/** Gathers what healVerdict needs for each file holding retired token `fp`. */
export async function healFacts(ctx: Context, fp: string, files: string[]): Promise<HealFacts[]> {
  const known = ctx.store.lineagePaths(fp);
  return fileFacts(ctx, files, (file) => known.has(file));
}

/** The facts of each file; `known(file)`: whether it held the token's lineage before. */
export async function fileFacts(ctx: Context, files: string[], known: (file: string) => boolean): Promise<HealFacts[]> {
  const userUid = typeof process.getuid === 'function' ? process.getuid() : null;
  const posix = ctx.pathEnv.platform !== 'win32';
  return Promise.all(
    files.map(async (file): Promise<HealFacts> => {
      const base = { file, known: known(file), userUid };
      try {
        const real = await realpath(file);
        const st = await stat(real);
        const gitRoot = (await findGitRoot(real, ctx.pathEnv.home)) ?? (real !== file ? await findGitRoot(file, ctx.pathEnv.home) : null);
        return { ...base, uid: posix ? st.uid : null, mode: posix ? st.mode : null, gitRoot };
      } catch (e) {
        return { ...base, uid: null, mode: null, gitRoot: null, unreadable: (e as NodeJS.ErrnoException).code ?? String(e) };
      }
    }),
  );
}
