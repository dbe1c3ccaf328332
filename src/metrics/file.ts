/**
 * The daemon's metrics file (settings `metricsFile`): what is recorded, rendered by
 * render.ts, written atomically so node_exporter's textfile collector never reads half a
 * file (a temp file in the same directory, not ending in `.prom` so the collector skips it,
 * fsync, rename). Mode 0644: the collector often runs as another user, and the file holds no
 * secret (fingerprints, states, times, counts).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import type { Logger } from '../log.js';
import { expandHome } from '../paths.js';
import { renderMetrics, TOKEN_STATES, type MetricsInput, type MetricsTokenState } from './render.js';

/** What the metrics show, from the store (offline, like `status`). */
export async function collectMetrics(ctx: Context): Promise<MetricsInput> {
  const { buildStatus } = await import('../status.js');
  const stats = ctx.store.eventStats(['rotated', 'rotation-failed', 'heal-refused']);
  return {
    tokens: buildStatus(ctx).map((t) => {
      // `expiresAt` comes with providers that have expiring tokens; Certorix tokens do not expire.
      const expiresAt = (t as { expiresAt?: string | null }).expiresAt ?? null;
      const state = (TOKEN_STATES as readonly string[]).includes(t.state) ? (t.state as MetricsTokenState) : 'invalid';
      return { fingerprint: t.fingerprint, provider: t.provider || 'certorix', state, ageDays: t.ageDays, expiresAt, lastCheckedAt: ctx.store.getToken(t.fingerprint)?.lastCheckedAt ?? null };
    }),
    lastRotationAt: stats.get('rotated')?.lastAt ?? null,
    rotationFailures: stats.get('rotation-failed')?.count ?? 0,
    healRefusals: stats.get('heal-refused')?.count ?? 0,
  };
}

/** Replaces `file` with `text` atomically; no temp file is left behind on failure. */
export async function writeFileAtomic(file: string, text: string, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(text);
      await fh.chmod(mode); // the umask may have narrowed it
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * The daemon's writer: `write(why)` renders and replaces the file named by the settings in
 * force (SIGHUP can change it). A failure is logged once per distinct error, with the file
 * and the fix, and never stops the daemon.
 */
export function createMetricsWriter(ctx: Context, log: Logger): { write(why: string): Promise<void> } {
  let lastError: string | null = null;
  // One write at a time, each collecting after the previous one landed: a slow write that
  // started earlier must not rename stale numbers over fresher ones.
  let chain: Promise<void> = Promise.resolve();
  const writeNow = async (why: string): Promise<void> => {
    const setting = ctx.settings.metricsFile;
    if (!setting) return;
    const file = expandHome(setting, ctx.pathEnv.home);
    try {
      await writeFileAtomic(file, renderMetrics(await collectMetrics(ctx)));
      if (lastError !== null) log.info({ file }, `metrics file ${file} written again`);
      lastError = null;
      log.debug({ file, why }, 'metrics file written');
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (msg !== lastError) {
        log.warn({ file, err: msg, why }, `could not write the metrics file ${file} (settings "metricsFile"): ${msg}; create its directory or make it writable for this user, or change "metricsFile"`);
      }
      lastError = msg;
    }
  };
  return {
    write(why) {
      chain = chain.then(() => writeNow(why));
      return chain;
    },
  };
}
