import type { Context } from '../context.js';
import { cleanPreflightLeftovers } from './preflight-marker.js';
import type { RotationResult } from './run.js';
import type { BrokerPort } from './port.js';
import { escapeControls } from '../terminal.js';

/**
 * Contract guarantee 2: every start of any command or of the daemon first finishes what
 * a crash left in the journal. Cheap when there is nothing to do (one indexed query).
 * If another process holds the rotation lock it is already on it, so we do not wait.
 */
export async function recoverIfNeeded(ctx: Context, opts: { wait?: boolean; broker: BrokerPort }): Promise<RotationResult[]> {
  const open = ctx.journal.open().length;
  // A preflight killed before its intent was journaled leaves only probe files behind.
  await cleanPreflightLeftovers(ctx.paths.dir);
  if (!open) return [];
  // Loaded only when there is something to finish: every command start comes through here.
  const { FileLock } = await import('../lock.js');
  const lock = new FileLock(ctx.paths.lock);
  if (opts.wait) await lock.acquire({ timeoutMs: 30_000, what: 'rotating tokens' });
  else if (!lock.tryAcquire()) return [];
  try {
    // Only now: the executor pulls in every parser and the HTTP client.
    const { executeRotation } = await import('./run.js');
    const results: RotationResult[] = [];
    for (const row of ctx.journal.open()) {
      ctx.log.warn({ fingerprint: row.oldFingerprint, step: row.step }, 'resuming an unfinished rotation');
      const r = await executeRotation(ctx, row.id, { broker: opts.broker });
      results.push(r);
      const msg =
        r.status === 'rotated'
          ? `Finished an interrupted rotation: token ${r.fingerprint} -> ${r.newFingerprint} (${r.files.length} file(s)).`
          : r.status === 'failed'
            ? `An interrupted rotation of token ${r.fingerprint} could not be finished: ${r.error?.describe() ?? 'unknown error'}`
            : `An interrupted rotation of token ${r.fingerprint} is still pending: ${r.error?.describe() ?? 'try again later'}`;
      process.stderr.write(escapeControls(msg) + '\n');
      for (const w of [...(r.warnings ?? []), ...(r.leftToFix ?? [])]) process.stderr.write(`warning: ${escapeControls(w)}\n`);
      for (const n of r.notices ?? []) process.stderr.write(`note: ${escapeControls(n)}\n`);
    }
    return results;
  } finally {
    lock.release();
  }
}
