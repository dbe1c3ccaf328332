/**
 * `exec` (resident beside every converted stdio server) and `headers` (Claude Code's
 * headersHelper, run at every connection) run from their own small bundles, exec.cjs and
 * headers.cjs, which boot.cjs picks by the command word (scripts/bundle.mjs): not the whole CLI
 * bundle main.cjs and its code cache, and no package (SQLite, pino, zod) for a slot in the file
 * store. Checked on the built CLI, spawned as a client spawns it, with a --require probe that
 * lists at exit every file the process loaded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLI, makeHome, type TempHome } from '../helpers/home.js';
import { BACKEND_FILE, FileTokenStore } from '../../src/broker/store.js';
import { Secret } from '../../src/secret.js';

const SLOT = 'certorix-0e0e0e0e';
const TOKEN = 'ctx_entrybundles_' + 'b'.repeat(32);
const CLI_DIR = path.dirname(CLI);

let h: TempHome;
afterEach(async () => {
  await h?.cleanup();
});

/** The slot in the file store, pinned as `broker enable` pins it. */
async function slotHome(): Promise<TempHome> {
  const home = await makeHome();
  await new FileTokenStore(home.stateDir).write(SLOT, new Secret(TOKEN));
  await writeFile(path.join(home.stateDir, BACKEND_FILE), 'file\n', { mode: 0o600 });
  return home;
}

/** Runs the CLI with a probe; returns its exit code, stdout and the files it had loaded at exit. */
async function probed(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; loaded: string[] }> {
  const out = path.join(h.home, `loaded-${args[0]}.json`);
  const probe = path.join(h.home, 'probe.cjs');
  await writeFile(probe, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`);
  const child = spawn(process.execPath, ['--require', probe, CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, loaded: JSON.parse(await readFile(out, 'utf8')) as string[] };
}

function bundlesOf(loaded: string[]): string[] {
  return loaded.filter((f) => path.dirname(f) === CLI_DIR).map((f) => path.basename(f));
}

describe('exec and headers load their own bundle only', () => {
  it('headers prints the token from headers.cjs, without main.cjs or any package', async () => {
    h = await slotHome();
    const r = await probed(['headers', SLOT, '--state-dir', h.stateDir], h.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
    expect(bundlesOf(r.loaded).sort()).toEqual(['boot.cjs', 'headers.cjs', 'main.js']);
    expect(r.loaded.filter((f) => f.includes(`${path.sep}node_modules${path.sep}`))).toEqual([]);
  });

  it('exec relays from exec.cjs, without main.cjs or any package', async () => {
    h = await slotHome();
    // A "server" that checks it got the token and exits: the wrapper exits with its code.
    const server = `process.exit(process.env.CERTORIX_API_TOKEN === ${JSON.stringify(TOKEN)} ? 7 : 1)`;
    const r = await probed(['exec', SLOT, '--state-dir', h.stateDir, '--', process.execPath, '-e', server], h.env);
    expect(r.code).toBe(7);
    expect(bundlesOf(r.loaded).sort()).toEqual(['boot.cjs', 'exec.cjs', 'main.js']);
    expect(r.loaded.filter((f) => f.includes(`${path.sep}node_modules${path.sep}`))).toEqual([]);
  });

  it('every other command still runs from main.cjs', async () => {
    h = await makeHome();
    const r = await probed(['--version'], h.env);
    expect(r.code).toBe(0);
    expect(bundlesOf(r.loaded)).toContain('main.cjs');
  });
});
