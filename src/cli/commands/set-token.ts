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

/**
 * A yes/no question on the controlling terminal. stdin carried the token (and is at its end),
 * so the answer is read from /dev/tty, and only when stderr is a terminal the user watches:
 * a script or a test never waits on a prompt nobody sees.
 */
async function confirmOnTerminal(question: string): Promise<boolean | null> {
  if (!process.stderr.isTTY) return null;
  const { createReadStream } = await import('node:fs');
  const { createInterface } = await import('node:readline/promises');
  let input: NodeJS.ReadableStream;
  try {
    input = createReadStream('/dev/tty');
    await new Promise<void>((resolve, reject) => input.once('open', () => resolve()).once('error', reject));
  } catch {
    return null; // no controlling terminal (a service, Windows): as good as no TTY
  }
  const rl = createInterface({ input, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
    (input as NodeJS.ReadStream).destroy();
  }
}

export async function run(values: Values): Promise<number> {
  const fp = typeof values.fingerprint === 'string' ? values.fingerprint : undefined;
  if (fp !== undefined && !isFingerprint(fp)) throw new UsageError(`--fingerprint takes 12 hex characters as "status" shows, not "${fp}".`);
  const secret = await readTokenFromStdin();
  const { setTokenOp, accountChangeTarget } = await import('../../operations.js');
  const attempt = (target: string | undefined) =>
    mutate(values, { method: 'set-token', params: { token: secret.reveal(), ...(target ? { fingerprint: target } : {}) } }, (c) => setTokenOp(c, secret, target));
  let done;
  try {
    done = await attempt(fp);
  } catch (e) {
    const target = e instanceof RotatorError ? accountChangeTarget(e) : null;
    if (!target) throw e;
    const yes = await confirmOnTerminal(`${(e as RotatorError).message}\nReplace token ${target} with a token of the other account in every config? [y/N] `);
    if (yes === null) throw e; // not on a terminal: exit 2 with the hint (--fingerprint)
    if (!yes) {
      err('Nothing was changed.');
      return 2;
    }
    done = await attempt(target);
  }
  const { ctx, res } = done;
  if ((res as { unchanged?: boolean }).unchanged) {
    for (const w of res.warnings) err(w);
    if (values.json) printJson({ dryRun: false, rotations: [] });
    return 0;
  }
  return finish(values, ctx.pathEnv.home, res, false);
}
