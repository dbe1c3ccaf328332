import { RotatorError } from '../../errors.js';
import { certorix } from '../../providers/certorix/index.js';
import { providerModule } from '../../providers/index.js';
import type { EventSource } from '../../store/store.js';
import type { Execution } from './execution.js';
import { warnIfNotCheckpointed } from './finish.js';
import type { StepHandler } from './execution.js';
import type { JournalRow } from '../../store/journal.js';

/**
 * `calling` found with no answer recorded: a rotate call of a provider without idempotency
 * (GitLab, Cloudflare) left and its answer was lost (a timeout, a reset, a crash). It is
 * never sent again: GitLab would take the repeat with the old, already revoked token as a
 * token reuse and revoke the new one too; Cloudflare would roll once more. The row ends as
 * `lost` (both tokens erased), the old token is recorded `invalid` (the server most likely
 * revoked it), no config is touched, and the user is sent to the token page and set-token.
 */
export const loseStep: StepHandler<'lose'> = async (ex, row) => {
  endLost(ex, row, 'the answer to the rotate call was lost before it was recorded (a crash or a cut connection)');
  return 'stop';
};

export function endLost(ex: Execution, row: JournalRow, why: string): void {
  const { ctx, id, result, log } = ex;
  const p = providerModule(row.provider) ?? certorix;
  const fp = row.oldFingerprint;
  const page = ctx.tokenPageFor(fp);
  const message =
    `The ${p.label} rotate call for token ${fp} was sent but ${why}. It is never repeated (${p.label} has no idempotency key: a repeat could revoke the new token too). ` +
    `The old token is most likely revoked and the new one was never seen; no config was changed.`;
  ctx.store.transaction(() => {
    ctx.store.setTokenState(fp, 'invalid');
    ctx.journal.finish(id, 'lost', ctx.nowIso(), message);
    ctx.store.addEvent({ at: ctx.nowIso(), type: 'rotation-lost', fingerprint: fp, newFingerprint: null, source: row.source as EventSource, files: [], detail: message });
  });
  warnIfNotCheckpointed(ex, ctx.store.checkpoint());
  // warn, not error: the CLI logs errors only and prints result.error itself, so an error-level line would say it twice.
  log.warn({ fingerprint: fp, provider: p.name, page }, message);
  result.status = 'failed';
  result.error = new RotatorError('E_ROTATION', message, {
    hint: `Make a new token at ${page} (revoke any token there you do not recognise), then pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\` (it reads the new token from stdin).`,
  });
}
