/**
 * Runs the built CLI on a pseudo-terminal (python3's pty module: no native addon), for what
 * only happens on a TTY: prompts. `answers`: when the output so far contains `when`, `send` is
 * typed. Returns the exit code and everything the terminal showed (stdout and stderr mixed).
 */
import { execFile } from 'node:child_process';
import { CLI } from './home.js';

const PY = String.raw`
import json, os, pty, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execve(spec["node"], [spec["node"], spec["cli"]] + spec["args"], spec["env"])
out = b""
answers = list(spec["answers"])
deadline = time.time() + spec["timeoutS"]
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    while answers and answers[0]["when"].encode() in out:
        os.write(fd, answers.pop(0)["send"].encode())
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status), "output": out.decode("utf-8", "replace")}))
`;

export async function runInPty(
  args: string[],
  env: Record<string, string>,
  answers: Array<{ when: string; send: string }> = [],
  timeoutS = 20,
): Promise<{ code: number; output: string }> {
  const spec = JSON.stringify({ node: process.execPath, cli: CLI, args, env: { TERM: 'xterm', ...env }, answers, timeoutS });
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', PY, spec], { timeout: (timeoutS + 10) * 1000, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) => {
      if (e) return reject(new Error(`pty runner failed: ${e.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as { code: number; output: string });
    });
  });
}
