import path from 'node:path';
import type { Context } from '../context.js';
import { clientById } from '../clients/catalog.js';
import { isGoneError, readConfigFile, type ConfigSnapshot } from '../clients/discover.js';
import { locateTokens, type FileFormat } from '../clients/formats.js';
import { EditError, replaceToken } from '../clients/edit.js';
import { ConcurrentChangeError, fsyncDir, writeFileAtomic, type PreparedWrite } from '../clients/write.js';
import { ConfigFileError, RotatorError } from '../errors.js';
import { Secret } from '../secret.js';
import type { JournalFile, JournalRow } from '../store/journal.js';
import { backupConfig } from './backup.js';
import { fillTemplate, type PlannedTemplate } from './plan.js';

/** One fsync per directory that received a rename, after all of them (contract guarantee 3). */
export async function fsyncDirsOf(done: Rewritten[]): Promise<void> {
  await Promise.all([...new Set(done.map((d) => path.dirname(d.realPath)))].map((d) => fsyncDir(d).catch(() => undefined)));
}

export interface RewriteInput {
  oldSecret: Secret | null;
  oldFingerprint: string;
  newSecret: Secret;
  planned: ConfigSnapshot | undefined;
  /** Pre-verified content for the planned snapshot; used on the first attempt only. */
  template?: PlannedTemplate | undefined;
  /** The temp file opened before the call for the planned snapshot; used with the template only. */
  prepared?: PreparedWrite | undefined;
  /** Told of a rewritten file whose mode had to be narrowed (it could not keep its group). */
  onWarning?: (message: string) => void;
}

/**
 * Rewrites one config: re-read (the file may have changed since planning), substitute,
 * write atomically with a compare-before-rename; on a concurrent change, start over from
 * the new content. Idempotent: a file that already holds the new token is left alone.
 */
export interface Rewritten {
  path: string;
  /** Where the bytes went (a symlink's target): its directory is the one to fsync. */
  realPath: string;
  /** The bytes before the rewrite, for the backup taken once every config is durable. */
  before: Buffer;
  oldToken: string;
  format: FileFormat;
}

export async function rewriteFile(ctx: Context, f: JournalFile, r: RewriteInput): Promise<Rewritten | null> {
  const spec = clientById(f.client);
  const format = f.format as FileFormat;
  for (let attempt = 1; ; attempt++) {
    // The planned snapshot saves a read; if the file changed since, the compare-before-rename catches it.
    let snap: ConfigSnapshot;
    try {
      snap = attempt === 1 && r.planned ? r.planned : await readConfigFile(f.path);
    } catch (e) {
      // Deleted (or its link left dangling) since planning: it holds no dead token, nothing to write.
      if (isGoneError(e)) return null;
      throw e;
    }
    let oldToken = r.oldSecret?.reveal();
    if (oldToken === undefined) {
      const located = locateTokens(snap.text, format);
      if (located.errors.length) throw new ConfigFileError('E_CONFIG_PARSE', f.path, `${f.path} no longer parses: ${located.errors[0]}`, 'Fix its syntax; the rotation resumes on the next command.');
      oldToken = located.sites.find((s) => new Secret(s.token).fingerprint === r.oldFingerprint)?.token;
      if (oldToken === undefined) return null;
    }
    let next: { text: string };
    const filled = attempt === 1 && r.planned && r.template && snap === r.planned ? fillTemplate(r.template, r.newSecret.reveal()) : null;
    try {
      next = filled !== null ? { text: filled } : replaceToken(snap.text, format, oldToken, r.newSecret.reveal());
    } catch (e) {
      // Already rewritten (a resumed rotation), or the user removed the token: nothing to do.
      if (e instanceof EditError && e.notFound) return null;
      if (e instanceof EditError && !e.unparsable) {
        // The file parses, so the token is what it cannot hold (a tab, characters its literal
        // cannot carry): the same every time, so retrying could never help.
        throw new ConfigFileError('E_CONFIG_CANNOT_HOLD', f.path, `${f.path} cannot hold the new token ${r.newSecret.fingerprint}: ${e.message}`, 'Remove that copy of the token, or rotate once more so Certorix issues a token it can hold.', e);
      }
      throw new ConfigFileError('E_CONFIG_PARSE', f.path, `Cannot rewrite ${f.path}: ${(e as Error).message}`, 'Check the file (did its syntax break?); the rotation resumes on the next command.', e);
    }
    // The prepared temp file fits only the planned snapshot (its directory, mode and owner).
    const prepared = filled !== null && r.prepared && !r.prepared.done && r.prepared.realPath === snap.realPath ? r.prepared : undefined;
    if (!prepared) await r.prepared?.discard();
    const onWarning = (m: string): void => {
      ctx.log.warn({ file: f.path }, m);
      r.onWarning?.(m);
    };
    try {
      const data = Buffer.from(next.text, 'utf8');
      await withClientLock(spec.lockDir, snap.realPath, () =>
        prepared
          ? prepared.commit(data, { expected: snap.bytes, skipDirSync: true, onWarning })
          : writeFileAtomic(snap.realPath, data, { mode: snap.stat.mode, uid: snap.stat.uid, gid: snap.stat.gid, expected: snap.bytes, skipDirSync: true, onWarning }),
      );
      return { path: f.path, realPath: snap.realPath, before: snap.bytes, oldToken, format };
    } catch (e) {
      if (e instanceof ConcurrentChangeError && attempt < 10) {
        ctx.log.info({ file: f.path, attempt }, 'config changed while being rewritten; re-reading and re-planning');
        continue;
      }
      throw e;
    }
  }
}

/**
 * Backups are taken after every config is durable: they are not needed for safety (each
 * rewrite is verified before it is written) and must not lengthen the window in which
 * clients hold a dead token. The old token in them is dead; other live tokens are blanked.
 */
export async function backupRewritten(ctx: Context, done: Rewritten[], live: string[], opts: { oldIsDead: boolean } = { oldIsDead: true }): Promise<void> {
  for (const d of done) {
    // Only a token this tool saw die may stay in a backup; with set-token nothing here killed
    // the old one (it may still work), so it is blanked like every other.
    const blank = (t: string) => !opts.oldIsDead || t !== d.oldToken;
    // Every other token the file holds may be live (another account, or one an earlier
    // rotation of this run just wrote, which no scan has seen): blank it where it sits,
    // through its literal, so an escaped form ("a\"b") is caught too.
    let text = d.before.toString('utf8');
    const others = new Set(locateTokens(text, d.format).sites.map((s) => s.token).filter(blank));
    for (const t of others) {
      try {
        text = replaceToken(text, d.format, t, 'REDACTED-BY-MCP-TOKEN-ROTATOR').text;
      } catch {
        /* left to the plain-text redaction below */
      }
    }
    const redact = [...live, ...others, d.oldToken].filter(blank);
    await backupConfig(ctx.paths.backups, d.path, Buffer.from(text, 'utf8'), { redact, keep: ctx.settings.backupsToKeep, now: ctx.now() }).catch((e: unknown) =>
      ctx.log.warn({ file: d.path, err: (e as Error).message }, 'could not keep a backup'),
    );
  }
}

export async function withClientLock<T>(enabled: boolean, file: string, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const lockfile = await import('proper-lockfile');
  // Same convention as Cline and Roo (proper-lockfile): a "<file>.lock" directory.
  // stale matches proper-lockfile's default that Cline uses; the retries outlast it, so a
  // lock left by a crashed writer (even by us) is taken over once it goes stale.
  const release = await lockfile.lock(file, { realpath: false, stale: 10_000, retries: { retries: 40, minTimeout: 50, maxTimeout: 500 } });
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Read-back (contract guarantee 6): each file holds the new token and not the old one. */
export async function verifyFiles(row: JournalRow): Promise<void> {
  for (const f of row.files) {
    if (f.unholdable) continue; // keeps the old token by design; reported by the finish step
    let snap: ConfigSnapshot;
    try {
      snap = await readConfigFile(f.path);
    } catch {
      continue; // removed since: nothing of ours to verify
    }
    const res = locateTokens(snap.text, f.format as FileFormat);
    if (res.sites.some((s) => new Secret(s.token).fingerprint === row.oldFingerprint)) {
      throw new RotatorError('E_ROTATION', `${f.path} still holds the old token ${row.oldFingerprint} after the rewrite.`, { file: f.path, hint: 'Run "mcp-token-rotator status" to resume; if it persists, a program is restoring its own copy of the file.' });
    }
  }
}

