import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, readFile, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ConfigFileError } from '../errors.js';
import { failpoint } from '../rotation/failpoints.js';

/**
 * Atomic config writes in the manner of npm/write-file-atomic, plus what it lacks: a
 * directory fsync, and a compare-before-rename so another writer's change is never
 * overwritten with stale content. The caller passes the real path (symlinks resolved),
 * so the link itself stays a link and its target gets the new bytes.
 */

export interface AtomicWriteOptions {
  /** Mode and owner to give the new file: the old file's. */
  mode: number;
  uid: number;
  gid: number;
  /**
   * The bytes the caller planned from. If the file no longer holds them when we are about
   * to rename, ConcurrentChangeError is thrown and nothing is replaced.
   */
  expected?: Buffer;
  /** Skip the directory fsync (the caller batches one per directory). */
  skipDirSync?: boolean;
  /** Told when the new file could not get the old owner or group, and what was done instead. */
  onWarning?: (message: string) => void;
}

export class ConcurrentChangeError extends Error {
  constructor(readonly file: string) {
    super(`${file} changed while it was being rewritten`);
    this.name = 'ConcurrentChangeError';
  }
}

export function tempPathFor(realPath: string): string {
  const dir = path.dirname(realPath);
  return path.join(dir, `.${path.basename(realPath)}.mtr-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

export async function writeFileAtomic(realPath: string, data: Buffer, opts: AtomicWriteOptions): Promise<void> {
  const w = await prepareAtomicWrite(realPath, opts);
  await w.commit(data, opts);
}

/**
 * A write split in two so that the part which does not need the content runs early: the
 * rotation prepares every config's write before the regenerate call (temp file created in
 * the same directory, opened, given the old file's mode and owner), and after the response
 * only the write, the fsync, the compare and the rename remain.
 */
export interface PreparedWrite {
  readonly realPath: string;
  readonly tmp: string;
  /** Whether commit() or discard() ran (a prepared write is used once). */
  readonly done: boolean;
  /** Writes `data`, fsyncs, checks `expected`, renames over realPath. The temp file never stays behind. */
  commit(data: Buffer, opts?: Pick<AtomicWriteOptions, 'expected' | 'skipDirSync' | 'onWarning'>): Promise<void>;
  /** Closes and removes the temp file (a prepared write that was not needed). */
  discard(): Promise<void>;
}

export async function prepareAtomicWrite(realPath: string, opts: Pick<AtomicWriteOptions, 'mode' | 'uid' | 'gid' | 'onWarning'>): Promise<PreparedWrite> {
  const tmp = tempPathFor(realPath);
  let fh: FileHandle | undefined;
  // Said once the file is in place: a write that never happens narrowed nothing.
  let warning: string | null = null;
  try {
    // Created 0600; the old file's owner and mode (given now, while the file is still empty)
    // apply to the bytes written later, which is what the renamed file has anyway.
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    // Owner first, then the mode that is safe for the owner and group it really got.
    const got = await chownIfNeeded(fh, opts.uid, opts.gid);
    const mode = safeMode(opts.mode & 0o7777, opts.gid, got.gid);
    await fh.chmod(mode);
    if (mode !== (opts.mode & 0o7777)) {
      warning =
        `${realPath}: could not give the rewritten file its group back (gid ${opts.gid}; it got gid ${got.gid}), so its mode is ${octal(mode)} instead of ${octal(opts.mode & 0o7777)}: ` +
        'the new group gets no more than others had. Restore the group with "chgrp" as its owner if a client needs it.';
    }
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw writeError(realPath, e);
  }
  const handle: FileHandle = fh;
  let done = false;
  const end = async (renamed: boolean) => {
    done = true;
    await handle.close().catch(() => undefined);
    if (!renamed) await unlink(tmp).catch(() => undefined);
  };
  return {
    realPath,
    tmp,
    get done() {
      return done;
    },
    async commit(data, c = {}) {
      if (done) throw new Error(`prepared write of ${realPath} used twice`);
      let renamed = false;
      try {
        await handle.writeFile(data);
        await handle.sync();
        if (c.expected) {
          const now = await readFile(realPath).catch(() => null);
          if (!now || !now.equals(c.expected)) throw new ConcurrentChangeError(realPath);
        }
        // Asynchronous on purpose: a rename waits for the filesystem journal, which the other
        // files' fsyncs keep busy; done synchronously it stalls every other write (measured:
        // 58 configs took about twice as long).
        await rename(tmp, realPath);
        renamed = true;
        if (warning !== null) (c.onWarning ?? opts.onWarning)?.(warning);
        if (!c.skipDirSync) await fsyncDir(path.dirname(realPath));
      } catch (e) {
        if (e instanceof ConcurrentChangeError) throw e;
        throw writeError(realPath, e);
      } finally {
        await end(renamed);
      }
    },
    async discard() {
      if (!done) await end(false);
    },
  };
}

const octal = (m: number) => m.toString(8).padStart(4, '0');

/**
 * Pure: the mode for a rewritten file that could not keep its group. Members of the group
 * it got had only the "other" bits on the old file; they must not gain more, so its group
 * bits become those the old group and others both had. An unchanged group keeps the mode.
 */
export function safeMode(mode: number, wantGid: number, gotGid: number): number {
  if (wantGid === gotGid) return mode;
  const group = (mode >> 3) & 0o7 & mode & 0o7;
  return (mode & ~0o070) | (group << 3);
}

/** Gives the file the old owner and group where allowed; returns what it really has. */
async function chownIfNeeded(fh: FileHandle, uid: number, gid: number): Promise<{ uid: number; gid: number }> {
  const st = await fh.stat();
  if (st.uid === uid && st.gid === gid) return { uid, gid };
  try {
    await fh.chown(uid, gid);
    return { uid, gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
  // Only root can give a file away; the group alone may still be ours to set (a group we are in).
  if (st.gid !== gid) await fh.chown(st.uid, gid).catch(() => undefined);
  const now = await fh.stat();
  return { uid: now.uid, gid: now.gid };
}

export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (e) {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
    if (!['EINVAL', 'ENOTSUP', 'EISDIR', 'EBADF'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    await fh.close();
  }
}

/** Room kept beside a second copy of the file: a longer new token, filesystem metadata. */
const SPACE_SLACK_BYTES = 8 * 1024;

/**
 * Preflight: would writeFileAtomic succeed? Opens the file for writing (refused for an
 * immutable, append-only or read-only file; without O_APPEND, which an append-only file
 * would allow although a rename over it is refused), creates and removes a temp file in its
 * directory (refused for a read-only, immutable or append-only directory, or no free
 * inode), and checks the filesystem has room for a second copy of the file (the temp file
 * exists beside the old one until the rename). Changes nothing.
 */
export async function checkWritable(displayPath: string, realPath: string, rehearse?: { data: Buffer; mode: number }): Promise<void> {
  try {
    // No O_TRUNC, and nothing is written: opening alone changes neither bytes nor mtime.
    const fh = await open(realPath, constants.O_WRONLY);
    await fh.close();
  } catch (e) {
    throw writeError(displayPath, e, realPath);
  }
  const dir = path.dirname(realPath);
  const probe = tempPathFor(realPath);
  try {
    const fh = await open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      if (rehearse) {
        // A dress rehearsal of writeFileAtomic (minus fsync and rename): the planned bytes
        // must fit, and the code that runs after the API call is warm when it matters.
        await fh.writeFile(rehearse.data);
        failpoint('during-preflight-probe');
        await fh.chmod(rehearse.mode & 0o7777);
        await fh.stat();
        await readFile(realPath);
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  } catch (e) {
    await unlink(probe).catch(() => undefined);
    throw writeError(displayPath, e, dir);
  }
  try {
    await unlink(probe);
  } catch (e) {
    // An append-only directory lets a file in but not out; the rename would fail the same way.
    throw writeError(displayPath, e, `${dir} (it would not let the probe file ${probe} be removed; delete it once fixed)`);
  }
  const st = await stat(realPath);
  if (!st.isFile()) throw new ConfigFileError('E_CONFIG_UNWRITABLE', displayPath, `${displayPath} is not a regular file.`, 'Replace it with the client\'s config file.');
  await checkFreeSpace(displayPath, dir, st.size);
}

/**
 * Disk full is found now, before the API is called, rather than after the token was
 * regenerated. Filesystems that report no sizes (some FUSE and network mounts) are trusted.
 */
async function checkFreeSpace(displayPath: string, dir: string, size: number): Promise<void> {
  let fs: { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number };
  try {
    fs = await statfs(dir);
  } catch {
    return; // not supported here: the write itself still fails cleanly
  }
  if (!(fs.bsize > 0 && fs.blocks > 0)) return;
  // Root may use the blocks reserved for it; everyone else only the available ones.
  const freeBytes = (process.getuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
  const need = Math.ceil((size + SPACE_SLACK_BYTES) / fs.bsize) * fs.bsize;
  const noInode = fs.files > 0 && fs.ffree === 0;
  if (freeBytes >= need && !noInode) return;
  const kb = (n: number): string => `${Math.ceil(n / 1024)} KB`;
  const e = Object.assign(new Error(noInode ? 'no free inode' : 'no space left on device'), { code: 'ENOSPC' });
  const what = noInode
    ? `${dir} (its filesystem has no free inode for the temp file)`
    : `${dir} (a rewrite needs about ${kb(need)} free beside the file, ${kb(freeBytes)} are)`;
  throw writeError(displayPath, e, what);
}

function writeError(file: string, e: unknown, what = file): ConfigFileError {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  const hint =
    code === 'EPERM'
      ? `The system refuses changes to ${what} (immutable attribute? check "lsattr" / "chflags"). Remove the flag (chattr -i / chflags nouchg) and run the command again.`
      : code === 'EACCES'
        ? `Give your user write access to ${what} (and its directory), then run the command again.`
        : code === 'EROFS'
          ? `${what} is on a read-only filesystem; remount it writable or move the config.`
          : code === 'ENOSPC' || code === 'EDQUOT'
            ? `The disk holding ${what} is full; free some space and run the command again.`
            : 'Check the file and its directory, then run the command again.';
  return new ConfigFileError('E_CONFIG_UNWRITABLE', file, `Cannot write ${file} (${code}).`, hint, e);
}

/**
 * Removes temp files that a killed writer (ours, by pid) left beside a config. A temp file
 * of a process that is still alive is its business and is left alone.
 */
export async function removeStaleTemps(realPath: string): Promise<string[]> {
  const dir = path.dirname(realPath);
  const prefix = `.${path.basename(realPath)}.mtr-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(prefix) || !n.endsWith('.tmp')) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) continue;
    await unlink(path.join(dir, n)).then(
      () => removed.push(path.join(dir, n)),
      () => undefined,
    );
  }
  return removed;
}

/** Whether a pid is a live process (this one included); EPERM means alive but not ours. */
export function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
