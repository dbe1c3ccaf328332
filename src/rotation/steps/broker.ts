import { RotatorError } from '../../errors.js';
import { Secret } from '../../secret.js';
import { failpoint } from '../failpoints.js';
import type { StepHandler } from './execution.js';

/** Before the regenerate call: running wrappers of the token's slots hold new requests. */
export const announceStep: StepHandler<'announce'> = async (ex) => {
  const b = ex.broker;
  if (!b) return 'next';
  // Everything the regenerate call needs is loaded first: the hold starts here and should
  // last only the call itself, the journal write and the store step.
  await ex.ctx.provider();
  await b.signal.announce();
  b.announced = true;
  // Calls already at a server finish with the old token, which works until the regenerate
  // call: wait until the wrappers and the local endpoint report none in flight (bounded;
  // shorter for revoke-now).
  const maxMs = b.signal.revoke ? 1000 : 5000;
  const d = await ex.brokerPort.drain(ex.ctx, b, maxMs);
  if (d.pending) ex.log.warn({ wrappers: d.pending, ms: d.ms }, 'some broker wrappers still had calls in flight; rotating anyway');
  return 'next';
};

/**
 * Right after the new token is journaled, before any config write or other API call: every
 * millisecond from here on is a failed call for a server still holding the old token. A
 * failure leaves the rotation journaled (the new token stays in the journal) for the next
 * command to store again.
 */
export const storeStep: StepHandler<'store'> = async (ex, row) => {
  const b = ex.broker;
  if (!b) return 'next';
  const newSecret = new Secret(row.newToken as string);
  try {
    await ex.brokerPort.storeNewToken(ex.ctx, b, row, newSecret);
  } catch (e) {
    const msg = (e as Error).message;
    ex.ctx.journal.noteAttempt(ex.id, msg, ex.ctx.nowIso());
    ex.log.error({ fingerprint: row.oldFingerprint, newFingerprint: newSecret.fingerprint, err: msg }, 'could not store the new token for broker mode; the rotation stays journaled');
    ex.result.error = new RotatorError('E_BROKER_STORE', `Token ${row.oldFingerprint} was regenerated (new ${newSecret.fingerprint}) but the broker token store (${b.store.where}) could not take it: ${msg}`, {
      hint: 'The new token is journaled; fix the store (see "mcp-token-rotator doctor") and run any command (e.g. "mcp-token-rotator status") to finish.',
    });
    return 'stop';
  }
  failpoint('after-broker-stored');
  ex.log.info({ fingerprint: row.oldFingerprint, newFingerprint: newSecret.fingerprint, slots: b.slots }, 'new token stored for broker mode');
  return 'next';
};
