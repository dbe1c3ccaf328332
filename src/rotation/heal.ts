import { realpath, stat } from 'node:fs/promises';
import type { Context } from '../context.js';
import { findGitRoot } from '../doctor/git.js';
import { shq } from '../doctor/finding.js';
import { FileLock } from '../lock.js';
import type { ScanResult } from '../scan.js';
import { backupRewritten, fsyncDirsOf, rewriteFile, type Rewritten } from './rewrite.js';
import type { Secret } from '../secret.js';
import type { BrokerPort } from './port.js';

export interface HealResult {
  fingerprint: string;
  newFingerprint: string | null;
  files: string[];
  ok: boolean;
  error?: string;
}

export interface HealRefused {
  fingerprint: string;
  file: string;
  reasons: HealRefusal[];
  message: string;
  fix: string;
}

// =======================================================================================
// Pure: may the current token be written into this file?

export type HealRefusal = 'unknown-location' | 'not-owner' | 'readable-by-others' | 'in-git' | 'unreadable';

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
  const userUid = typeof process.getuid === 'function' ? process.getuid() : null;
  const posix = ctx.pathEnv.platform !== 'win32';
  return Promise.all(
    files.map(async (file): Promise<HealFacts> => {
      const base = { file, known: known.has(file), userUid };
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

export interface HealOutcome {
  healed: HealResult[];
  refused: HealRefused[];
}

/**
 * Contract guarantee 7: a retired token that reappears in a config (Claude Desktop restoring
 * its own copy, a dotfiles sync) is replaced by the current token, with the same byte-exact
 * atomic write as a rotation, where healVerdict allows it; elsewhere it is left untouched
 * and reported (`refused`; the caller warns, notifies, records). The current token's value
 * is taken from a config that holds it, or from the daemon's memory: the store never keeps
 * token values.
 */
export async function healRetired(ctx: Context, broker: BrokerPort, scan: ScanResult, remembered: ReadonlyMap<string, Secret> = new Map()): Promise<HealOutcome> {
  // Broker mode first: restored plaintext copies of converted entries go back to the broker form.
  ({ scan, remembered } = await broker.healEntries(ctx, scan, remembered));
  const stale = [...scan.tokens].filter(([fp]) => ctx.store.getToken(fp)?.state === 'retired');
  const outcome: HealOutcome = { healed: [], refused: [] };
  if (!stale.length) return outcome;
  const lock = new FileLock(ctx.paths.lock);
  await lock.acquire({ timeoutMs: 60_000, what: 'rotating tokens' });
  const out = outcome.healed;
  try {
    const formats = new Map(scan.configs.map((c) => [c.candidate.path, c.candidate]));
    for (const [fp, found] of stale) {
      const cur = ctx.store.currentSuccessor(fp);
      const all = [...new Set(found.sites.map((s) => s.path))];
      const files: string[] = [];
      for (const facts of await healFacts(ctx, fp, all)) {
        const v = healVerdict(facts);
        if (v.heal) files.push(facts.file);
        else outcome.refused.push({ fingerprint: fp, file: facts.file, reasons: v.reasons, ...describeRefusal(fp, cur, facts.file, v) });
      }
      if (!files.length) continue;
      // From a config that holds it, or from the daemon's memory of what it wrote (never from disk).
      const current = cur ? (scan.tokens.get(cur) ?? (remembered.has(cur) ? { secret: remembered.get(cur) as Secret } : undefined)) : undefined;
      if (!cur || !current) {
        const error = `token ${fp} was retired and reappeared in ${files.join(', ')}, but no config holds its successor ${cur ?? '(unknown)'} to copy from`;
        ctx.log.error({ fingerprint: fp, newFingerprint: cur, files }, `${error}; pipe the current token to "mcp-token-rotator set-token --fingerprint ${fp}"`);
        out.push({ fingerprint: fp, newFingerprint: cur, files, ok: false, error });
        continue;
      }
      try {
        const done: Rewritten[] = [];
        for (const p of files) {
          const cand = formats.get(p);
          const w = await rewriteFile(
            ctx,
            { path: p, client: cand?.client ?? 'project', format: cand?.format ?? 'jsonc', written: false },
            { oldSecret: found.secret, oldFingerprint: fp, newSecret: current.secret, planned: scan.configs.find((c) => c.candidate.path === p)?.snapshot },
          );
          if (w) done.push(w);
        }
        await fsyncDirsOf(done);
        await backupRewritten(ctx, done, [...[...scan.tokens.values()].map((t) => t.secret.reveal()), current.secret.reveal()]);
        ctx.store.addEvent({ at: ctx.nowIso(), type: 'healed', fingerprint: fp, newFingerprint: cur, source: 'watch', files, detail: null });
        ctx.log.info({ fingerprint: fp, newFingerprint: cur, files }, 'healed: a retired token reappeared and the current one was put back');
        out.push({ fingerprint: fp, newFingerprint: cur, files, ok: true });
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        ctx.log.error({ fingerprint: fp, newFingerprint: cur, files, err: error }, 'could not heal a config holding a retired token');
        out.push({ fingerprint: fp, newFingerprint: cur, files, ok: false, error });
      }
    }
  } finally {
    lock.release();
  }
  return outcome;
}
