import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile, symlink, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

export interface TempHome {
  home: string;
  env: Record<string, string>;
  stateDir: string;
  path(rel: string): string;
  write(rel: string, content: string | Buffer, mode?: number): Promise<string>;
  read(rel: string): Promise<string>;
  link(rel: string, target: string): Promise<string>;
  settings(obj: Record<string, unknown>): Promise<void>;
  /** Every file under the state directory, raw bytes, for "no token at rest" checks. */
  stateFiles(): Promise<Array<{ file: string; bytes: Buffer }>>;
  cleanup(): Promise<void>;
}

/** A throw-away HOME with the env a spawned CLI needs to use it and the fake API. */
export async function makeHome(apiUrl?: string): Promise<TempHome> {
  const home = await mkdtemp(path.join(tmpdir(), 'mtr-home-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
  };
  if (apiUrl) env.CERTORIX_API_URL = apiUrl;
  const stateDir = path.join(home, '.local/state/mcp-token-rotator');
  const h: TempHome = {
    home,
    env,
    stateDir,
    path: (rel) => path.join(home, rel),
    async write(rel, content, mode) {
      const p = path.join(home, rel);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, content);
      if (mode !== undefined) await chmod(p, mode);
      return p;
    },
    read: (rel) => readFile(path.join(home, rel), 'utf8'),
    async link(rel, target) {
      const p = path.join(home, rel);
      await mkdir(path.dirname(p), { recursive: true });
      await symlink(target, p);
      return p;
    },
    async settings(obj) {
      await h.write('.config/mcp-token-rotator/config.json', JSON.stringify(obj, null, 2));
    },
    async stateFiles() {
      const out: Array<{ file: string; bytes: Buffer }> = [];
      const walk = async (d: string): Promise<void> => {
        let names: string[];
        try {
          names = await readdir(d);
        } catch {
          return;
        }
        for (const n of names) {
          const p = path.join(d, n);
          const st = await stat(p);
          if (st.isDirectory()) await walk(p);
          else if (st.isFile()) out.push({ file: p, bytes: await readFile(p) });
        }
      };
      await walk(stateDir);
      return out;
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
  // Fast retries so fault tests do not sleep for real backoff.
  // The file token store: a test must not write to the desktop keychain of whoever runs it
  // (test/broker/store.test.ts tests the keychain in a private D-Bus session).
  await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, broker: { store: 'file' } });
  return h;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env: Record<string, string>; input?: string; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Asserts that none of the given token values occurs in any of the texts. */
export function findLeaks(tokens: string[], texts: Array<string | Buffer>): string[] {
  const leaks: string[] = [];
  for (const t of tokens) {
    for (const x of texts) {
      const s = typeof x === 'string' ? x : x.toString('latin1');
      if (s.includes(t)) leaks.push(t.slice(0, 6) + '…');
    }
  }
  return leaks;
}
