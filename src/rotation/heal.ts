import type { Context } from '../context.js';
import { FileLock } from '../lock.js';
import type { ScanResult } from '../scan.js';
import { backupRewritten, fsyncDirsOf, rewriteFile, type Rewritten } from './rewrite.js';
import type { Secret } from '../secret.js';
import { describeRefusal, healFacts, healVerdict, type HealRefused } from './heal-verdict.js';
import type { BrokerPort } from './port.js';

export { describeRefusal, fileFacts, healFacts, healVerdict, type HealFacts, type HealRefusal, type HealRefused, type HealVerdict } from './heal-verdict.js';

export interface HealResult {
  fingerprint: string;
  newFingerprint: string | null;
  files: string[];
  ok: boolean;
  error?: string;
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
  const brokerHeal = await broker.healEntries(ctx, scan, remembered);
  ({ scan, remembered } = brokerHeal);
  // A file the broker heal refused gets no plaintext token either (it may run a planted command).
  const brokerRefused = new Set(brokerHeal.refused.map((r) => r.file));
  const stale = [...scan.tokens].filter(([fp]) => ctx.store.getToken(fp)?.state === 'retired');
  const outcome: HealOutcome = { healed: [], refused: [...brokerHeal.refused] };
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
      for (const facts of await healFacts(ctx, fp, all.filter((f) => !brokerRefused.has(f)))) {
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
