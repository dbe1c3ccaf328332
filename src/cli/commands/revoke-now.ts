import { UsageError } from '../../errors.js';
import type { Values } from '../commands.js';
import { err, printJson } from '../output.js';
import { withContext } from '../session.js';
import { rotateAndReport } from './rotate.js';

async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^y(es)?$/i.test(answer.trim());
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
      err('Nothing was done.');
      return 2;
    }
  }
  return withContext(values, async (ctx) => {
    const { findTokens, recordScan } = await import('../../scan.js');
    const { buildStatus } = await import('../../status.js');
    recordScan(ctx, await findTokens(ctx));
    const tokens = buildStatus(ctx);
    const invalid = tokens.filter((t) => t.state === 'invalid');
    for (const t of invalid) err(`warning: token ${t.fingerprint} is already invalid; regenerate it in the Certorix web UI, then pipe it to "mcp-token-rotator set-token --fingerprint ${t.fingerprint}".`);
    const targets = tokens.filter((t) => t.state !== 'invalid').map((t) => t.fingerprint);
    if (!targets.length && values.json) {
      printJson({ rotations: [] });
      return invalid.length ? 2 : 0;
    }
    const code = await rotateAndReport(ctx, values, targets, 'revoke-now');
    return invalid.length ? 2 : code;
  });
}
