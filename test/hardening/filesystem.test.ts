/**
 * Filesystem faults: each ends with a clear message naming the file, the original bytes
 * intact, and exit 2 where it stops a rotation. The ones that need root powers (chattr,
 * mount) skip with the reason when the machine does not allow them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, lstatSync, readFileSync, readlinkSync, statfsSync, statSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { FIXTURES, type Fixture } from '../helpers/fixtures.js';
import { findLeaks, runCli } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';
import { REGENERATE, SOME, expectInvariant, liveToken, makeWorld, regenerateRequests, snapshot, status, tempFilesUnder, tryRun, type World } from './helpers.js';

const isRoot = process.getuid?.() === 0;

let api: FakeCertorix;
let w: World;
/** Undone after each test even when it fails: chattr flags, mounts. */
let undo: Array<() => void> = [];

beforeEach(async () => {
  api = await startFakeCertorix();
});
afterEach(async () => {
  for (const u of undo.reverse()) {
    try {
      u();
    } catch {
      /* best effort */
    }
  }
  undo = [];
  await api.close();
  await w?.h.cleanup();
});

const fixture = (client: string): Fixture => FIXTURES.find((f) => f.client === client)!;
const without = (...clients: string[]): Fixture[] => SOME.filter((f) => !clients.includes(f.client));

/** The preflight refused: exit 2, the file named, the API never asked, every byte where it was. */
async function expectRefusedBeforeAnyCall(before: string[], file: string, reason: RegExp): Promise<string> {
  const r = await runCli(['rotate'], { env: w.h.env });
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/Preflight failed/);
  expect(r.stderr).toContain(file);
  expect(r.stderr).toMatch(reason);
  expect(r.stderr).toMatch(/->/); // a hint follows
  expect(regenerateRequests(api)).toEqual([]);
  expect(api.isLive(w.tok)).toBe(true);
  expect(await snapshot(w)).toEqual(before);
  expect(tempFilesUnder(w.h.home)).toEqual([]);
  return r.stderr;
}

function chattr(flag: string, file: string): string | null {
  const why = tryRun('chattr', [flag, file]);
  if (!why) undo.push(() => execFileSync('chattr', [flag.replace('+', '-'), file], { stdio: 'ignore' }));
  return why;
}

function mountTmpfs(dir: string, opts: string): string | null {
  if (!isRoot) return 'not root: cannot mount a tmpfs';
  const why = tryRun('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
  if (!why) undo.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
  return why;
}

/** Fills the filesystem holding `dir` until only `leaveBytes` (rounded to blocks) are free. */
function fill(dir: string, leaveBytes: number): string {
  const filler = path.join(dir, `filler-${Date.now()}`);
  const { bsize } = statfsSync(dir);
  const chunk = Buffer.alloc(bsize, 0x61);
  for (;;) {
    const st = statfsSync(dir);
    if (st.bfree * st.bsize <= leaveBytes) break;
    try {
      appendFileSync(filler, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
      throw e;
    }
  }
  return filler;
}

describe('the OS refuses the change: stopped by the preflight, before any API call', () => {
  it('an immutable config (chattr +i)', async ({ skip }) => {
    w = await makeWorld(api);
    const file = w.h.path('.codex/config.toml');
    const why = chattr('+i', file);
    if (why) skip(`chattr +i not possible here: ${why}`);
    const err = await expectRefusedBeforeAnyCall(await snapshot(w), file, /EPERM/);
    expect(err).toMatch(/chattr -i/);
  });

  it('an append-only config (chattr +a), which an O_APPEND probe would wrongly accept', async ({ skip }) => {
    w = await makeWorld(api);
    const file = w.h.path('.continue/config.yaml');
    const why = chattr('+a', file);
    if (why) skip(`chattr +a not possible here: ${why}`);
    await expectRefusedBeforeAnyCall(await snapshot(w), file, /EPERM/);
  });

  it('an immutable directory (chattr +i on the config directory)', async ({ skip }) => {
    w = await makeWorld(api);
    const dir = w.h.path('.cursor');
    const why = chattr('+i', dir);
    if (why) skip(`chattr +i not possible here: ${why}`);
    await expectRefusedBeforeAnyCall(await snapshot(w), w.h.path('.cursor/mcp.json'), /EPERM/);
  });

  it('an append-only directory (chattr +a): a temp file gets in but could never be renamed over the config', async ({ skip }) => {
    w = await makeWorld(api);
    const dir = w.h.path('.codex');
    const why = chattr('+a', dir);
    if (why) skip(`chattr +a not possible here: ${why}`);
    const before = await snapshot(w);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/Preflight failed/);
    expect(r.stderr).toContain(w.h.path('.codex/config.toml'));
    expect(r.stderr).toMatch(/EPERM/);
    // The probe cannot be removed from such a directory either; the message names it.
    const left = tempFilesUnder(w.h.home);
    expect(left).toHaveLength(1);
    expect(r.stderr).toContain(left[0]);
    expect(regenerateRequests(api)).toEqual([]);
    expect(api.isLive(w.tok)).toBe(true);
    expect(await snapshot(w)).toEqual(before);
  });

  it('a read-only directory (a read-only bind mount)', async ({ skip }) => {
    w = await makeWorld(api);
    const dir = w.h.path('.codex');
    if (!isRoot) skip('not root: cannot bind-mount');
    const why = tryRun('mount', ['--bind', dir, dir]);
    if (why) skip(`bind mount not permitted: ${why}`);
    undo.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
    const ro = tryRun('mount', ['-o', 'remount,bind,ro', dir]);
    if (ro) skip(`read-only remount not permitted: ${ro}`);
    const err = await expectRefusedBeforeAnyCall(await snapshot(w), w.h.path('.codex/config.toml'), /EROFS/);
    expect(err).toMatch(/read-only filesystem/);
  });
});

describe('disk full', () => {
  /** A config big enough to need several blocks, on a tiny tmpfs, symlinked from where the client looks. */
  const big: Fixture = {
    client: 'cursor',
    rel: '.cursor/mcp.json',
    content: (t) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: t } } }, notes: 'n'.repeat(20_000) }, null, 2) + '\n',
  };

  async function worldOnTmpfs(skip: (note: string) => never): Promise<{ mnt: string; real: string }> {
    w = await makeWorld(api, { fixtures: [...without('cursor'), big] });
    const mnt = w.h.path('mnt');
    await mkdir(mnt);
    const why = mountTmpfs(mnt, 'size=64k');
    if (why) skip(`tmpfs mount not permitted: ${why}`);
    const real = path.join(mnt, 'mcp.json');
    await writeFile(real, readFileSync(w.h.path('.cursor/mcp.json')));
    await unlink(w.h.path('.cursor/mcp.json'));
    await symlink(real, w.h.path('.cursor/mcp.json'));
    return { mnt, real };
  }

  it('the config fits but a second copy does not: refused before the API is called', async ({ skip }) => {
    const { mnt, real } = await worldOnTmpfs(skip);
    fill(mnt, 12 * 1024); // 20 KB file in place, about 12 KB free
    const before = await snapshot(w);
    const err = await expectRefusedBeforeAnyCall(before, w.h.path('.cursor/mcp.json'), /ENOSPC/);
    expect(err).toMatch(/full/);
    expect(lstatSync(w.h.path('.cursor/mcp.json')).isSymbolicLink()).toBe(true);
    expect(tempFilesUnder(mnt)).toEqual([]);
    expect(readFileSync(real, 'utf8')).toBe(big.content(w.tok));
  });

  it('with room for the copy, the same set-up rotates through the symlink (the control case)', async ({ skip }) => {
    const { mnt, real } = await worldOnTmpfs(skip);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const st = await status(w);
    const live = await expectInvariant(api, w, st);
    expect(readlinkSync(w.h.path('.cursor/mcp.json'))).toBe(real);
    expect(readFileSync(real, 'utf8')).toBe(big.content(live));
    expect(tempFilesUnder(mnt)).toEqual([]);
  });

  it('the disk fills during the regenerate call: exit 2, the new token journaled, the file intact; freeing space and one command finish it', async ({ skip }) => {
    const { mnt, real } = await worldOnTmpfs(skip);
    api.fault({ path: REGENERATE }, { kind: 'delay', ms: 800 }, 1);
    const running = runCli(['rotate'], { env: w.h.env });
    for (let i = 0; i < 200 && !regenerateRequests(api).length; i++) await new Promise((r) => setTimeout(r, 10));
    const filler = fill(mnt, 0);
    const r = await running;
    expect(r.code).toBe(2);
    const live = liveToken(api, w.email);
    expect(r.stderr).toContain(`was regenerated (new ${fingerprint(live)})`);
    expect(r.stderr).toContain(w.h.path('.cursor/mcp.json'));
    expect(r.stderr).toMatch(/ENOSPC/);
    expect(r.stderr).toMatch(/run "mcp-token-rotator rotate --fingerprint [0-9a-f]{12}" to finish/);
    expect(readFileSync(real, 'utf8')).toBe(big.content(w.tok));
    expect(tempFilesUnder(mnt)).toEqual([]);
    // The others already hold the new token; none holds a dead one but the one that could not be written.
    for (const f of without('cursor')) expect(await w.h.read(f.rel), f.client).toBe(f.content(live));

    const still = await status(w);
    expect(still.code).toBe(2);
    expect(still.tokens.map((t) => t.state)).toContain('rotating');
    expect(readFileSync(real, 'utf8')).toBe(big.content(w.tok));

    await rm(filler);
    const done = await status(w);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/Finished an interrupted rotation/);
    expect(api.regenerateCount).toBe(1);
    await expectInvariant(api, w, done);
    expect(lstatSync(w.h.path('.cursor/mcp.json')).isSymbolicLink()).toBe(true);
  });
});

describe('odd things where a config should be', () => {
  it('a directory: scan names it; rotate rewrites the others and leaves it alone', async () => {
    w = await makeWorld(api, { fixtures: without('cursor') });
    await mkdir(w.h.path('.cursor/mcp.json'), { recursive: true });
    const scan = await runCli(['scan'], { env: w.h.env });
    expect(scan.code).toBe(2);
    expect(scan.stderr).toContain(w.h.path('.cursor/mcp.json'));
    expect(scan.stderr).toMatch(/not a regular file \(it is a directory\)/);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
    expect(statSync(w.h.path('.cursor/mcp.json')).isDirectory()).toBe(true);
  });

  it('a FIFO: refused without blocking on it', async () => {
    w = await makeWorld(api, { fixtures: without('cursor') });
    await mkdir(w.h.path('.cursor'), { recursive: true });
    execFileSync('mkfifo', [w.h.path('.cursor/mcp.json')]);
    const scan = await runCli(['scan'], { env: w.h.env, timeoutMs: 10_000 });
    expect(scan.code).toBe(2);
    expect(scan.stderr).toContain(w.h.path('.cursor/mcp.json'));
    expect(scan.stderr).toMatch(/special file/);
    const r = await runCli(['rotate'], { env: w.h.env, timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
  });

  it.each([
    ['a symlink loop', async (p: string) => {
      await symlink(p + '.b', p);
      await symlink(p, p + '.b');
    }, /symlink loop/],
    ['a dangling symlink', async (p: string) => {
      await symlink(p + '.gone', p);
    }, /dangling symlink/],
  ])('%s: scan names it; rotate rewrites the others; the link is left as it was', async (_name, make, message) => {
    w = await makeWorld(api, { fixtures: without('cursor') });
    const p = w.h.path('.cursor/mcp.json');
    await mkdir(path.dirname(p), { recursive: true });
    await make(p);
    const target = readlinkSync(p);
    const scan = await runCli(['scan'], { env: w.h.env });
    expect(scan.code).toBe(2);
    expect(scan.stderr).toContain(p);
    expect(scan.stderr).toMatch(message);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
    expect(readlinkSync(p)).toBe(target);
  });

  // A config that vanished (deleted, or its link left dangling) holds no dead token: the
  // rotation must not stay "rotating" for ever because of it.
  it('a config deleted while the regenerate call is in flight does not block the rotation', async () => {
    w = await makeWorld(api, { fixtures: without('cursor') });
    const cursor = fixture('cursor');
    await w.h.write(cursor.rel, cursor.content(w.tok));
    api.fault({ path: REGENERATE }, { kind: 'delay', ms: 800 }, 1);
    const running = runCli(['rotate'], { env: w.h.env });
    for (let i = 0; i < 200 && !regenerateRequests(api).length; i++) await new Promise((r) => setTimeout(r, 10));
    await unlink(w.h.path(cursor.rel));
    const r = await running;
    const st = await status(w);
    // A file that is gone holds no dead token: nothing is left to write there.
    expect(r.code, r.stderr).toBe(0);
    expect(st.code, st.stderr).toBe(0);
    await expectInvariant(api, w, st);
    expect(existsSync(w.h.path(cursor.rel))).toBe(false);
  });

  it('a config replaced by a directory during the call: exit 2 naming it; once the user removes it, one command finishes', async () => {
    w = await makeWorld(api, { fixtures: without('cursor') });
    const cursor = fixture('cursor');
    await w.h.write(cursor.rel, cursor.content(w.tok));
    api.fault({ path: REGENERATE }, { kind: 'delay', ms: 800 }, 1);
    const running = runCli(['rotate'], { env: w.h.env });
    for (let i = 0; i < 200 && !regenerateRequests(api).length; i++) await new Promise((r) => setTimeout(r, 10));
    await unlink(w.h.path(cursor.rel));
    await mkdir(w.h.path(cursor.rel));
    const r = await running;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(w.h.path(cursor.rel));
    expect(r.stderr).toMatch(/not a regular file/);
    const live = liveToken(api, w.email);
    for (const f of w.fixtures) expect(await w.h.read(f.rel), f.client).toBe(f.content(live));
    await rm(w.h.path(cursor.rel), { recursive: true });
    const st = await status(w);
    expect(st.code, st.stderr).toBe(0);
    await expectInvariant(api, w, st);
  });
});

describe('big, odd and empty files', () => {
  it('a 10 MB ~/.claude.json rotates byte for byte, in reasonable time', async () => {
    w = await makeWorld(api, { fixtures: without('claude-code') });
    const history = Array.from({ length: 20 }, (_, i) => ({ display: `refactor the module ${i} `.repeat(12), pastedContents: {} }));
    const projects: Record<string, unknown> = {};
    for (let i = 0; i < 1500; i++) {
      projects[`/home/dev/code/project-${i}`] = { allowedTools: [], history, mcpServers: {}, enabledMcpjsonServers: [], hasTrustDialogAccepted: i % 2 === 0, lastCost: i / 7 };
    }
    projects['/home/dev/code/app'] = { mcpServers: { 'certorix-remote': { type: 'http', url: 'https://mcp.certorix.com/mcp', headers: { Authorization: `Bearer ${w.tok}` } } } };
    const doc = { numStartups: 1234, mcpServers: { certorix: { type: 'stdio', command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: w.tok } } }, projects };
    const text = JSON.stringify(doc, null, 2);
    expect(text.length).toBeGreaterThan(10 * 1024 * 1024);
    await w.h.write('.claude.json', text);

    const t0 = Date.now();
    const r = await runCli(['rotate'], { env: w.h.env, timeoutMs: 60_000 });
    const ms = Date.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    const live = await expectInvariant(api, w, await status(w));
    const after = await readFile(w.h.path('.claude.json'), 'utf8');
    expect(after === text.split(w.tok).join(live), 'byte-exact except the token').toBe(true);
    console.log(`[hardening] rotate with a ${(text.length / 1048576).toFixed(1)} MB ~/.claude.json: ${ms} ms`);
    expect(ms).toBeLessThan(15_000);
  });

  it('non-UTF-8 bytes in a config that holds the token: the rotation is refused, nothing called or written', async () => {
    w = await makeWorld(api, { fixtures: without('shell') });
    const bytes = Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from(` (latin-1)\nexport CERTORIX_API_TOKEN="${w.tok}"\n`)]);
    await w.h.write('.bashrc', bytes);
    await expectRefusedBeforeAnyCall(await snapshot(w), w.h.path('.bashrc'), /not valid UTF-8/);
    expect(readFileSync(w.h.path('.bashrc')).equals(bytes)).toBe(true);
  });

  it('non-UTF-8 bytes in a config without the token: reported by scan, left alone, the rotation goes on', async () => {
    w = await makeWorld(api);
    const bytes = Buffer.concat([Buffer.from('{ "theme": "caf'), Buffer.from([0xe9, 0xff]), Buffer.from('" }\n')]);
    await w.h.write('.gemini/settings.json', bytes);
    const scan = await runCli(['scan'], { env: w.h.env });
    expect(scan.code).toBe(2);
    expect(scan.stderr).toContain(w.h.path('.gemini/settings.json'));
    expect(scan.stderr).toMatch(/not valid UTF-8/);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
    expect(readFileSync(w.h.path('.gemini/settings.json')).equals(bytes)).toBe(true);
  });

  it('a UTF-8 BOM and CRLF line endings are kept, in every format', async () => {
    const bom = (f: Fixture): Fixture => ({ ...f, content: (t) => '\uFEFF' + f.content(t) });
    const crlf = (f: Fixture): Fixture => ({ ...f, content: (t) => f.content(t).replace(/\r?\n/g, '\r\n') });
    const odd = [bom(fixture('claude-desktop')), bom(crlf(fixture('vscode'))), crlf(fixture('codex')), bom(fixture('continue')), crlf(fixture('goose')), crlf(fixture('shell')), bom(fixture('lmstudio'))];
    w = await makeWorld(api, { fixtures: odd });
    const r = await runCli(['rotate', '--json'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ files: unknown[] }> };
    expect(doc.rotations[0]!.files).toHaveLength(odd.length);
    await expectInvariant(api, w, await status(w));
    expect((await readFile(w.h.path('.config/Claude/claude_desktop_config.json'))).subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
  });

  it('empty and blank files hold no token and are no error', async () => {
    w = await makeWorld(api, { fixtures: [fixture('claude-desktop')] });
    const blanks: Array<[string, string]> = [
      ['.cursor/mcp.json', ''],
      ['.codex/config.toml', ''],
      ['.continue/config.yaml', ''],
      ['.gemini/settings.json', '  \n'],
      ['.config/Code/User/mcp.json', '// nothing yet\n'],
      ['.bashrc', ''],
    ];
    for (const [rel, text] of blanks) await w.h.write(rel, text);
    const scan = await runCli(['scan', '--json'], { env: w.h.env });
    expect(scan.code, scan.stderr).toBe(0);
    const configs = (JSON.parse(scan.stdout) as { configs: Array<{ path: string; status: string; tokens: string[] }> }).configs;
    for (const [rel] of blanks) expect(configs.find((c) => c.path === w.h.path(rel)), rel).toMatchObject({ status: 'ok', tokens: [] });
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
    for (const [rel, text] of blanks) expect(await w.h.read(rel)).toBe(text);
    expect(findLeaks([liveToken(api, w.email)], [scan.stdout, scan.stderr, r.stdout, r.stderr])).toEqual([]);
  });
});
