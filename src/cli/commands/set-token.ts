import { RotatorError, UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { Secret } from '../../secret.js';
import type { Values } from '../commands.js';
import { err, printJson } from '../output.js';
import { mutate } from '../mutate.js';
import { finish } from './rotate.js';

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
  const { setTokenOp } = await import('../../operations.js');
  const { ctx, res } = await mutate(values, { method: 'set-token', params: { token: secret.reveal(), ...(fp ? { fingerprint: fp } : {}) } }, (c) => setTokenOp(c, secret, fp));
  if ((res as { unchanged?: boolean }).unchanged) {
    for (const w of res.warnings) err(w);
    if (values.json) printJson({ dryRun: false, rotations: [] });
    return 0;
  }
  return finish(values, ctx.pathEnv.home, res, false);
}
