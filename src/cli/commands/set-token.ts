import { RotatorError, UsageError } from '../../errors.js';
import { isFingerprint } from '../../fingerprint.js';
import { badFingerprintMessage } from '../argv-safety.js';
import { Secret } from '../../secret.js';
import type { Values } from '../commands.js';
import { err, printJson } from '../output.js';
import { mutate } from '../mutate.js';
import { finish } from './rotate.js';

const MAX_STDIN = 16 * 1024;

/** The token comes from stdin only: argv is visible to every user through ps. */
export async function readTokenFromStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<Secret> {
  const tty = stream as NodeJS.ReadStream;
  if (tty.isTTY && typeof tty.setRawMode === 'function') return checkTokenText(await readHidden(tty));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_STDIN) throw new RotatorError('E_INPUT', `The input on stdin is larger than ${MAX_STDIN / 1024} KB; that is not a token.`, { hint: 'Pipe only the token, e.g. "pbpaste | mcp-token-rotator set-token".' });
    chunks.push(b);
  }
  return checkTokenText(Buffer.concat(chunks).toString('utf8'));
}

function checkTokenText(raw: string): Secret {
  const text = raw.replace(/^\uFEFF/, '').replace(/(\r?\n)+$/, '').trim();
  if (text === '') throw new RotatorError('E_INPUT', 'No token on stdin.', { hint: 'Pipe the token in, e.g. "pbpaste | mcp-token-rotator set-token" or "mcp-token-rotator set-token < token.txt".' });
  if (/\s/.test(text)) throw new RotatorError('E_INPUT', 'The input on stdin holds more than one line or word; a token has no spaces.', { hint: 'Pipe only the token itself.' });
  return new Secret(text);
}

/**
 * Interactive: the token is typed or pasted on the terminal, never echoed (raw mode, like
 * ssh-askpass or sudo), and one Enter finishes. Ctrl-C or Ctrl-D on an empty line stops
 * with nothing changed; Backspace works; a bracketed paste's markers are dropped.
 */
export async function readHidden(tty: NodeJS.ReadStream, prompt = 'Paste the new token (it is not shown), then press Enter: '): Promise<string> {
  // Raw mode (no echo) before the prompt: nothing typed after the prompt can be echoed.
  tty.setRawMode(true);
  process.stderr.write(prompt);
  tty.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const done = (e: Error | null) => {
        tty.off('data', onData);
        tty.off('end', onEnd);
        process.stderr.write('\n');
        if (e) reject(e);
        else resolve(text);
      };
      const onEnd = () => done(null);
      const onData = (chunk: Buffer | string) => {
      // eslint-disable-next-line no-control-regex -- the bracketed-paste markers a terminal may wrap a paste in
        const s = (typeof chunk === 'string' ? chunk : chunk.toString('utf8')).replace(/\x1b\[20[01]~/g, '');
        for (const c of s) {
          if (c === '\r' || c === '\n') return done(null);
          if (c === '\x03') return done(new RotatorError('E_INPUT', 'Interrupted (Ctrl-C); no token was read and nothing was changed.', { hint: 'Run "mcp-token-rotator set-token" again when you have the token.' }));
          if (c === '\x04') {
            if (text === '') return done(null);
            continue;
          }
          if (c === '\x7f' || c === '\b') text = text.slice(0, -1);
          else if (c >= ' ') text += c;
          if (text.length > MAX_STDIN) return done(new RotatorError('E_INPUT', `The input is larger than ${MAX_STDIN / 1024} KB; that is not a token.`, { hint: 'Paste only the token.' }));
        }
      };
      tty.on('data', onData);
      tty.once('end', onEnd);
    });
  } finally {
    tty.setRawMode(false);
    tty.pause();
  }
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
  if (fp !== undefined && !isFingerprint(fp)) throw new UsageError(badFingerprintMessage('--fingerprint', fp));
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
