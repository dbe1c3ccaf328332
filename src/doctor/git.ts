/**
 * Configs inside a git work tree: the pure verdict, and the thin git plumbing that gathers
 * the facts (no shell, fsmonitor off, an environment without secrets). `findGitRoot` is
 * also what the daemon's heal asks before writing a token into a file.
 */
import { execFile } from 'node:child_process';
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { childEnv } from '../process/child-env.js';
import { shq, type Finding } from './finding.js';

export type GitFacts =
  | { state: 'none' }
  | { state: 'tracked' | 'untracked' | 'ignored'; root: string }
  | { state: 'unknown'; root: string; reason: string };

/** A config inside a git work tree: committed is a leak, untracked is a leak waiting to happen. */
export function checkGit(file: string, fingerprints: string[], g: GitFacts): Finding | null {
  if (g.state === 'none') return null;
  const rel = path.relative(g.root, file) || path.basename(file);
  const base = { id: 'config-in-git', file, ...(fingerprints.length === 1 ? { fingerprint: fingerprints[0] } : {}) };
  const rotate = fingerprints.map((fp) => `mcp-token-rotator rotate --fingerprint ${fp}`).join(' && ');
  switch (g.state) {
    case 'tracked':
      return {
        ...base,
        severity: 'danger',
        message: `${file} is committed to git: the token is in the history; rotate it (${rotate}) and purge it (repository ${g.root}).`,
        fix:
          `${rotate}; then stop tracking it: git -C ${shq(g.root)} rm --cached -- ${shq(rel)} && echo ${shq('/' + rel)} >> ${shq(path.join(g.root, '.gitignore'))}; ` +
          `then purge the history (e.g. git filter-repo --invert-paths --path ${shq(rel)}) and force-push if it was ever pushed.`,
      };
    case 'untracked':
      return {
        ...base,
        severity: 'warn',
        message: `${file} is inside the git work tree ${g.root}, not committed yet but not ignored either: one "git add ." away from leaking the token.`,
        fix: `add it to .gitignore: echo ${shq('/' + rel)} >> ${shq(path.join(g.root, '.gitignore'))}`,
      };
    case 'ignored':
      return { ...base, severity: 'ok', message: `${file} is inside the git work tree ${g.root} and ignored by git.`, fix: '' };
    case 'unknown':
      return {
        ...base,
        severity: 'warn',
        message: `${file} is inside the git work tree ${g.root}; whether git tracks it is unknown (${g.reason}).`,
        fix: `Check with: git -C ${shq(g.root)} ls-files -- ${shq(rel)}; if it is listed, ${rotate} and purge it; otherwise add it to .gitignore.`,
      };
  }
}

export interface GitOptions {
  /** The git program (default "git"); tests point it at a missing one. */
  git?: string;
}

function runGit(git: string, args: string[], cwd: string): Promise<{ code: number | 'ENOENT'; stderr: string }> {
  const env = childEnv(process.env, { GIT_OPTIONAL_LOCKS: '0', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' });
  for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_CEILING_DIRECTORIES', 'GIT_COMMON_DIR']) delete env[k];
  return new Promise((resolve) => {
    // No shell; fsmonitor off so that looking never runs a hook command from the repo's config.
    // --literal-pathspecs: a file named like a glob ([x]*.json) must not match others; check-ignore
    // takes plain paths and refuses the flag.
    const literal = args[0] === 'check-ignore' ? [] : ['--literal-pathspecs'];
    execFile(git, ['-c', 'core.fsmonitor=false', ...literal, ...args], { cwd, env, timeout: 15_000, windowsHide: true }, (error, _o, stderr) => {
      if (!error) return resolve({ code: 0, stderr: String(stderr) });
      const e = error as NodeJS.ErrnoException & { code?: number | string };
      if (e.code === 'ENOENT') return resolve({ code: 'ENOENT', stderr: '' });
      resolve({ code: typeof e.code === 'number' ? e.code : -1, stderr: String(stderr) });
    });
  });
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/**
 * The git work tree a file is in: walks up from its directory looking for `.git` (a
 * directory, or a file for worktrees and submodules), up to and including HOME, never into
 * HOME's parent (other users' trees are none of our business).
 */
export async function findGitRoot(file: string, home: string): Promise<string | null> {
  const realHome = await realpath(home).catch(() => path.resolve(home));
  const stops = new Set([path.dirname(realHome), path.dirname(path.resolve(home))]);
  let dir = path.dirname(file);
  for (;;) {
    if (stops.has(dir)) return null;
    if (await exists(path.join(dir, '.git'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export async function gitFacts(file: string, home: string, opts: GitOptions = {}): Promise<GitFacts> {
  const root = await findGitRoot(file, home);
  if (root === null) return { state: 'none' };
  const git = opts.git ?? 'git';
  const rel = path.relative(root, file);
  const tracked = await runGit(git, ['ls-files', '--error-unmatch', '--', rel], root);
  if (tracked.code === 'ENOENT') return { state: 'unknown', root, reason: 'git is not installed' };
  if (tracked.code === 0) return { state: 'tracked', root };
  if (tracked.code !== 1) return { state: 'unknown', root, reason: `git ls-files failed: ${firstLine(tracked.stderr)}` };
  const ignored = await runGit(git, ['check-ignore', '-q', '--', rel], root);
  if (ignored.code === 0) return { state: 'ignored', root };
  if (ignored.code === 1) return { state: 'untracked', root };
  return { state: 'unknown', root, reason: `git check-ignore failed: ${firstLine(ignored.stderr)}` };
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 200) || 'no message';
}
