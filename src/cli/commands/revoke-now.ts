import { EXIT, UsageError } from '../../errors.js';
import type { Values } from '../commands.js';
import { err } from '../output.js';
import { mutate } from '../mutate.js';
import { finish } from './rotate.js';

async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function run(values: Values): Promise<number> {
  if (values.yes !== true) {
    if (!process.stdin.isTTY) {
      throw new UsageError('revoke-now regenerates every tracked token at once and needs confirmation.', 'Run "mcp-token-rotator revoke-now --yes" to confirm without a terminal.');
    }
    if (!(await confirm('Regenerate EVERY tracked Certorix token now and rewrite every config? [y/N] '))) {
      // Declining is an answer, not a failure: exit 0 (a refusal without a terminal stays 64).
      err('Nothing was done: no token was regenerated and no config was changed.');
      return EXIT.ok;
    }
  }
  const { revokeNowOp } = await import('../../operations.js');
  const { ctx, res } = await mutate(values, { method: 'revoke-now', params: {} }, async (c) => (await import('../../broker/reroute.js')).renewAfterRevoke(c, await revokeNowOp(c)));
  // A token that was already invalid could not be revoked by us: finish() reports it and exits 2.
  return finish(values, ctx.pathEnv.home, res, false, 'No tracked token to revoke. Run "mcp-token-rotator scan" first.');
}
