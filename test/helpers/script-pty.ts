import { spawn, spawnSync } from 'node:child_process';
import { CLI } from './home.js';

export interface PtyResult {
  code: number | null;
  /** Everything the pseudo-terminal showed (stdout and stderr together, \r\n line ends). */
  output: string;
}

/** Shell-quotes one word for `script -c`. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs the built CLI on a pseudo-terminal through util-linux `script` (no node-pty), with the
 * terminal `cols` wide. `input` is typed once the output contains `waitFor` (a prompt).
 */
export function runCliOnPty(args: string[], opts: { env: Record<string, string>; cols?: number; input?: string; waitFor?: string; timeoutMs?: number }): Promise<PtyResult> {
  const cmd = `stty cols ${opts.cols ?? 100} rows 40; exec ${q(process.execPath)} ${q(CLI)} ${args.map(q).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...opts.env, SHELL: '/bin/sh', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let typed = false;
    const maybeType = () => {
      if (typed || opts.input === undefined) return;
      if (opts.waitFor && !output.includes(opts.waitFor)) return;
      typed = true;
      // A moment for the prompt's raw mode to be in force, as a person's typing would be.
      setTimeout(() => child.stdin.write(opts.input), 100);
    };
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      maybeType();
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pty run ${args.join(' ')} timed out; output so far:\n${output}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    maybeType();
  });
}

/** Whether `script` (util-linux) is there to give a pseudo-terminal. */
export function hasScript(): boolean {
  return spawnSync('script', ['--version']).status === 0;
}
