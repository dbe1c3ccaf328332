/**
 * `npm run sandbox` (issue 16 item 2): the lines it prints, pasted into a shell, point the CLI
 * at the fake API and the throw-away HOME, and every command then works there; the real HOME
 * is never touched; Ctrl-C removes the sandbox.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/home.js';

const run = promisify(execFile);
interface Ready { home: string; apiUrl: string; cli: string; exports: string[]; fingerprints: string[]; files: string[] }

let child: ChildProcess;
let ready: Ready;

beforeAll(async () => {
  child = spawn(process.execPath, [path.join(ROOT, 'dist/test/fake/sandbox.js'), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  ready = await new Promise<Ready>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Ready);
    });
    child.on('exit', (code) => reject(new Error(`sandbox exited ${code}`)));
    setTimeout(() => reject(new Error('sandbox did not start')), 10_000);
  });
});

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

/** The printed lines, as a user pastes them, then the commands, in bash with a different HOME. */
async function shell(commands: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const script = ['shopt -s expand_aliases', ...ready.exports, commands].join('\n');
  try {
    const r = await run('bash', ['-c', script], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent-real-home', XDG_STATE_HOME: '/nonexistent-real-state', LANG: 'C.UTF-8' },
      timeout: 30_000,
    });
    return { ...r, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code };
  }
}

describe('npm run sandbox', () => {
  it('prints two lines that point the CLI at the fake API and the sandbox HOME', () => {
    expect(ready.exports).toHaveLength(2);
    expect(ready.exports[0]).toContain(`CERTORIX_API_URL='${ready.apiUrl}'`);
    expect(ready.exports[0]).toContain('unset XDG_CONFIG_HOME XDG_STATE_HOME');
    expect(ready.exports[1]).toMatch(/^alias mcp-token-rotator=/);
  });

  it('scan, status, rotate and history work there with the seeded tokens', async () => {
    const [due, other] = ready.fingerprints;
    const scan = await shell('mcp-token-rotator scan --json');
    expect(scan.code, scan.stderr).toBe(0);
    const status = await shell('mcp-token-rotator status --json');
    expect(status.code, status.stderr).toBe(1); // the 95-day-old token is due
    const tokens = (JSON.parse(status.stdout) as { tokens: Array<{ fingerprint: string; state: string; ageDays: number; locations: unknown[] }> }).tokens;
    expect(tokens.map((t) => [t.fingerprint, t.state, t.ageDays, t.locations.length]).sort()).toEqual(
      [[due, 'due', 95, 3], [other, 'ok', 12, 1]].sort(),
    );
    const rotate = await shell(`mcp-token-rotator rotate --fingerprint ${due} --json`);
    expect(rotate.code, rotate.stderr).toBe(0);
    // The configs sit where each client looks on this OS (here VS Code's).
    expect(ready.files.every((f) => f.startsWith(ready.home + path.sep))).toBe(true);
    const vscode = readFileSync(ready.files[2]!, 'utf8');
    expect(vscode).toContain('// VS Code keeps comments');
    const history = await shell('mcp-token-rotator history --json');
    expect((JSON.parse(history.stdout) as { events: Array<{ type: string; fingerprint: string }> }).events[0]).toMatchObject({ type: 'rotated', fingerprint: due });
    // The state went into the sandbox, not the HOME the shell started with.
    expect(existsSync(path.join(ready.home, '.local/state/mcp-token-rotator/rotator.db'))).toBe(true);
  });

  it('Ctrl-C stops the fake API and removes the sandbox HOME', async () => {
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(ready.home)).toBe(false);
  });
});
