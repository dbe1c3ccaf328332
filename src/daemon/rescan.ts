import { createHash } from 'node:crypto';
import type { Context } from '../context.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import type { Trigger } from './checks.js';
import { brokerPort } from '../broker/rotation-port.js';

export interface RescanDeps {
  ctx: Context;
  log: Logger;
  notify(title: string, body: string): void;
  /** Re-plan the watched directories (a config or directory appeared). */
  refreshWatch(): void;
  /** Ask the API about tokens seen for the first time (enqueued by the caller). */
  check(trigger: Trigger): void;
}

/**
 * The watcher's and every mutation's follow-up: rescan the configs, track new tokens, heal
 * retired ones where that is safe and warn about the rest. Quiet when nothing changed.
 * Runs inside the daemon's queue.
 */
export function createRescanner(deps: RescanDeps): {
  rescan(why: string, changed?: string[], opts?: { askNew?: boolean }): Promise<void>;
  liveTokens(): ReadonlyMap<string, Secret>;
} {
  const { ctx, log } = deps;
  const lastHash = new Map<string, string>();
  const lastError = new Map<string, string>();
  // Live tokens this process has seen, in memory only, so a config restored with a retired
  // token can be healed even when no other config holds the current one.
  const remembered = new Map<string, Secret>();
  // Refused heals already warned about (fingerprint, file, reasons), and the files concerned:
  // a change to one of those (chmod 600) is worth a look even when its content is the same.
  const warnedRefusals = new Set<string>();
  let refusedFiles = new Set<string>();

  const rescan = async (why: string, changed?: string[], opts: { askNew?: boolean } = {}) => {
    const { findTokens, recordScan } = await import('../scan.js');
    const { healRetired } = await import('../rotation/heal.js');
    const scan = await findTokens(ctx);
    for (const [fp, t] of scan.tokens) if (ctx.store.getToken(fp)?.state !== 'retired') remembered.set(fp, t.secret);
    let news = false;
    for (const c of scan.configs) {
      const p = c.candidate.path;
      const h = c.snapshot ? contentHash(c.snapshot.bytes) : 'missing';
      if (lastHash.get(p) !== h) news = true;
      lastHash.set(p, h);
      if (c.status === 'error' && c.error) {
        if (lastError.get(p) !== c.error.message) log.warn({ file: p, err: c.error.message, hint: c.error.hint }, 'config cannot be read; keeping its last good view');
        lastError.set(p, c.error.message);
      } else lastError.delete(p);
    }
    // Our own write, or a touch that changed nothing.
    if (!news && changed && !changed.some((p) => refusedFiles.has(p))) return;
    const { newFingerprints } = recordScan(ctx, scan);
    if (changed) log.info({ files: changed, reason: why }, 'configs changed; rescanned');
    if (newFingerprints.length && opts.askNew !== false) {
      log.info({ fingerprints: newFingerprints }, 'new token(s) found; asking the API for age and role');
      deps.check('found');
    }
    const { healed, refused } = await healRetired(ctx, brokerPort, scan, remembered);
    refusedFiles = new Set(refused.map((r) => r.file));
    for (const r of refused) {
      const key = `${r.fingerprint}\0${r.file}\0${r.reasons.join(',')}`;
      if (warnedRefusals.has(key)) continue;
      warnedRefusals.add(key);
      const successor = ctx.store.currentSuccessor(r.fingerprint);
      log.warn({ fingerprint: r.fingerprint, newFingerprint: successor, file: r.file, reasons: r.reasons, fix: r.fix }, r.message);
      // Broker heal refusals may concern a live token (a converted entry restored in plaintext).
      const retired = ctx.store.getToken(r.fingerprint)?.state === 'retired';
      deps.notify(
        retired ? 'Retired Certorix token in an unexpected file' : 'Certorix entry not converted back',
        `Token ${r.fingerprint}${retired ? ' (retired)' : ''} appeared in ${r.file}; it was not healed (${r.reasons.join(', ')}). See the daemon log or run "mcp-token-rotator doctor".`,
      );
      ctx.store.addEvent({ at: ctx.nowIso(), type: 'heal-refused', fingerprint: r.fingerprint, newFingerprint: successor, source: 'watch', files: [r.file], detail: r.reasons.join(',') });
    }
    if (healed.some((h) => !h.ok)) deps.notify('MCP token not healed', 'A config holds a retired token; see the daemon log.');
    if (healed.some((h) => h.ok)) {
      // Record what we wrote so the watcher's echo of our own write is ignored.
      const again = await findTokens(ctx);
      recordScan(ctx, again);
      for (const c of again.configs) if (c.snapshot) lastHash.set(c.candidate.path, contentHash(c.snapshot.bytes));
    }
    deps.refreshWatch();
  };

  return {
    rescan,
    liveTokens() {
      const live = new Map<string, Secret>();
      for (const [fp, s] of remembered) {
        const row = ctx.store.getToken(fp);
        if (!row || row.state === 'retired') remembered.delete(fp);
        // Only tokens some config holds: a token the user removed everywhere is not asked about.
        else if (ctx.store.listLocations(fp).length) live.set(fp, s);
      }
      return live;
    },
  };
}

function contentHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
