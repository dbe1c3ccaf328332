/**
 * Exposures that outlive the file: a token that sat in a git-tracked file is in the git
 * history, and one that sat in a file other users could read may have been copied, even
 * after the file stops holding it (`broker enable`, a hand edit). Doctor reports such a
 * token until it is rotated. Pure decisions here, and the thin I/O that records them.
 */
import path from 'node:path';
import type { Context } from '../context.js';
import { Exposures, type ExposureKind, type ExposureRow } from '../store/exposures.js';
import { octal, shq, type Finding } from './finding.js';
import type { GitFacts } from './git.js';

/** Pure: what a file holding `fingerprints` exposes them to, from its mode and git state. */
export function exposuresOf(f: { mode: number | null; git: GitFacts; fingerprints: string[] }): Array<{ fingerprint: string; kind: ExposureKind; detail: string }> {
  const out: Array<{ fingerprint: string; kind: ExposureKind; detail: string }> = [];
  for (const fingerprint of f.fingerprints) {
    if (f.git.state === 'tracked') out.push({ fingerprint, kind: 'git', detail: f.git.root });
    if (f.mode !== null && (f.mode & 0o044) !== 0) {
      const who = [f.mode & 0o040 ? 'group' : '', f.mode & 0o004 ? 'others' : ''].filter(Boolean).join(' and ');
      out.push({ fingerprint, kind: 'readable', detail: `mode ${octal(f.mode)}, readable by ${who}` });
    }
  }
  return out;
}

/**
 * Pure: the finding for a recorded exposure of a token still in use, or null when the file
 * still holds the token (the config checks report it there) or the token was rotated.
 */
export function checkExposure(e: ExposureRow, o: { retired: boolean; stillInFile: boolean }): Finding | null {
  if (o.retired || o.stillInFile) return null;
  const since = e.firstSeenAt.slice(0, 10);
  const rotate = `mcp-token-rotator rotate --fingerprint ${e.fingerprint}`;
  const quiet = '(with broker mode on, running clients do not notice)';
  if (e.kind === 'git') {
    const rel = path.relative(e.detail, e.path) || path.basename(e.path);
    return {
      id: 'token-exposed',
      severity: 'danger',
      file: e.path,
      fingerprint: e.fingerprint,
      message: `Token ${e.fingerprint} was in ${e.path} while git tracked it (repository ${e.detail}, seen since ${since}): it stays in the git history although the file no longer holds it, and the token still works.`,
      fix: `${rotate} ${quiet}; then purge it from the history if it was ever pushed (e.g. git -C ${shq(e.detail)} filter-repo --invert-paths --path ${shq(rel)}).`,
    };
  }
  return {
    id: 'token-exposed',
    severity: 'warn',
    file: e.path,
    fingerprint: e.fingerprint,
    message: `Token ${e.fingerprint} was in ${e.path} while other users could read it (${e.detail}, seen since ${since}): anyone on this machine may have kept a copy, and the token still works.`,
    fix: `${rotate} ${quiet}.`,
  };
}

/** Records what a file holding these tokens exposes them to (no token values). */
export function recordExposures(ctx: Context, file: string, f: { mode: number | null; git: GitFacts; fingerprints: string[] }): number {
  const found = exposuresOf(f);
  if (!found.length) return 0;
  const ex = new Exposures(ctx.store);
  const now = ctx.nowIso();
  ctx.store.transaction(() => {
    for (const e of found) ex.record({ ...e, path: file }, now);
  });
  return found.length;
}
