import { UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { badFingerprintMessage } from '../argv-safety.js';
import type { Values } from '../commands.js';
import { out, printJson, table } from '../output.js';
import { withContext } from '../session.js';

export async function run(values: Values): Promise<number> {
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive whole number; the value you passed is not one (not shown: it could be a token).');
  const fp = typeof values.fingerprint === 'string' ? values.fingerprint : undefined;
  if (fp !== undefined && !isFingerprint(fp)) throw new UsageError(badFingerprintMessage('--fingerprint', fp));
  // Offline, like status (contract guarantee 2): it reads the record, never finishes a rotation.
  return withContext(values, async (ctx) => {
    const events = ctx.store.listEvents({ limit, ...(fp ? { fingerprint: fp } : {}) }).map((e) => ({
      at: e.at,
      type: e.type,
      fingerprint: e.fingerprint,
      newFingerprint: e.newFingerprint,
      source: e.source,
      files: e.files,
      ...(e.detail ? { detail: e.detail } : {}),
    }));
    if (values.json) printJson({ events });
    else if (!events.length) out('No events yet.');
    else
      out(
        table(
          ['AT', 'TYPE', 'FINGERPRINT', 'NEW', 'SOURCE', 'FILES'],
          events.map((e) => [e.at, e.type, e.fingerprint ?? '-', e.newFingerprint ?? '-', e.source ?? '-', String(e.files.length)]),
        ),
      );
    return 0;
  }, { recover: false });
}
