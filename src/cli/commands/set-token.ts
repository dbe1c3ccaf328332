import { RotatorError, UsageError, ApiError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { Secret } from '../../secret.js';
import type { Values } from '../commands.js';
import { err, out, printJson } from '../output.js';
import { withContext } from '../session.js';
import { report } from './rotate.js';

const MAX_STDIN = 16 * 1024;

/** The token comes from stdin only: argv is visible to every user through ps. */
export async function readTokenFromStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<Secret> {
  if ((stream as NodeJS.ReadStream).isTTY) process.stderr.write('Paste the new token, then press Enter and Ctrl-D:\n');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_STDIN) throw new RotatorError('E_INPUT', `The input on stdin is larger than ${MAX_STDIN / 1024} KB; that is not a token.`, { hint: 'Pipe only the token, e.g. "pbpaste | mcp-token-rotator set-token".' });
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '').replace(/(\r?\n)+$/, '').trim();
  if (text === '') throw new RotatorError('E_INPUT', 'No token on stdin.', { hint: 'Pipe the token in, e.g. "pbpaste | mcp-token-rotator set-token" or "mcp-token-rotator set-token < token.txt".' });
  if (/\s/.test(text)) throw new RotatorError('E_INPUT', 'The input on stdin holds more than one line or word; a token has no spaces.', { hint: 'Pipe only the token itself.' });
  return new Secret(text);
}

export async function run(values: Values): Promise<number> {
  const fp = typeof values.fingerprint === 'string' ? values.fingerprint : undefined;
  if (fp !== undefined && !isFingerprint(fp)) throw new UsageError(`--fingerprint takes 12 hex characters as "status" shows, not "${fp}".`);
  const secret = await readTokenFromStdin();
  return withContext(values, async (ctx) => {
    const provider = await ctx.provider();
    let info;
    try {
      info = await provider.inspect(secret);
    } catch (e) {
      if (e instanceof ApiError && (e.kind === 'invalid-token' || e.kind === 'forbidden')) {
        throw new RotatorError('E_TOKEN_INVALID', `The API rejects the token on stdin (${secret.fingerprint}); no config was changed.`, {
          hint: 'Copy the token again from the Certorix web UI (MCP / API page) and retry.',
        });
      }
      throw e;
    }
    const { findTokens, recordScan } = await import('../../scan.js');
    const scan = await findTokens(ctx);
    recordScan(ctx, scan);
    let target = fp;
    if (!target) {
      const candidates = [...scan.tokens.keys()].filter((k) => k !== secret.fingerprint);
      const sameAccount = candidates.filter((k) => {
        const row = ctx.store.getToken(k);
        return row?.account != null && row.account === info.email;
      });
      const pick = sameAccount.length ? sameAccount : candidates;
      if (pick.length === 1) target = pick[0];
      else if (!pick.length) {
        if (scan.tokens.has(secret.fingerprint)) {
          if (values.json) printJson({ rotations: [] });
          else out(`Token ${secret.fingerprint} is already in place everywhere; nothing to do.`);
          return 0;
        }
        throw new RotatorError('E_TOKEN_UNKNOWN', 'No config holds a Certorix token to replace.', { hint: 'Add the token to your MCP client config by hand once, then run "mcp-token-rotator scan".' });
      } else {
        throw new UsageError(`More than one tracked token could be the one to replace: ${pick.join(', ')}.`, 'Say which with --fingerprint FP (see "mcp-token-rotator status").');
      }
    }
    if (target === secret.fingerprint) {
      if (values.json) printJson({ rotations: [] });
      else out(`Token ${secret.fingerprint} is already in place; nothing to do.`);
      return 0;
    }
    ctx.store.recordSeen(secret.fingerprint, 'certorix', ctx.nowIso());
    ctx.store.updateTokenInfo(secret.fingerprint, { role: info.role, account: info.email ?? null, tokenId: info.id, createdAt: info.createdAt ?? null, checkedAt: ctx.nowIso(), state: 'active' });
    const { rotateTokens } = await import('../../rotation/run.js');
    const results = await rotateTokens(ctx, [target as string], { source: 'set-token', adopt: secret, onProgress: (m) => err(m) });
    report(ctx, results, values.json === true, false);
    return results.every((r) => r.status === 'rotated') ? 0 : 2;
  });
}
