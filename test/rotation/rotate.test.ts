import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { parse as parseJsonc } from 'jsonc-parser';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { CLI, findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { FIXTURES, GITHUB_TOKEN } from '../helpers/fixtures.js';
import { fingerprint } from '../../src/fingerprint.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome;
let tok: string;
let EMAIL = 'dev@example.com';
let seq = 0;

async function setup(email?: string): Promise<void> {
  // One account per test: the fake API is shared, and liveToken() expects exactly one.
  EMAIL = email ?? `dev${++seq}@example.com`;
  email = EMAIL;
  h = await makeHome(api.url);
  tok = api.addToken({ email, role: 'editor', ageDays: 100 });
  for (const f of FIXTURES) await h.write(f.rel, f.content(tok));
}

function liveToken(email: string = EMAIL): string {
  const live = api.liveTokens(email);
  expect(live).toHaveLength(1);
  return live[0]!.token;
}

function tempFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.mtr-\d+-[0-9a-f]+\.tmp$/.test(n)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function regenerations(): number {
  return api.regenerateCount;
}

describe('rotate', () => {
  beforeEach(() => setup());
  afterEach(() => h.cleanup());

  it('rewrites every client format byte for byte, keeps modes and symlinks, leaves no temp file', async () => {
    await h.write('dotfiles/config.fish', `set -gx PATH $HOME/bin $PATH\nset -gx CERTORIX_API_TOKEN '${tok}'\n`);
    await h.link('.config/fish/config.fish', h.path('dotfiles/config.fish'));
    await chmod(h.path('.config/Claude/claude_desktop_config.json'), 0o640);
    const before = regenerations();
    const r = await runCli(['rotate', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(regenerations() - before).toBe(1);
    const fresh = liveToken();
    expect(fresh).not.toBe(tok);
    for (const f of FIXTURES) expect(await h.read(f.rel), f.client).toBe(f.content(fresh));
    expect(await h.read('dotfiles/config.fish')).toBe(`set -gx PATH $HOME/bin $PATH\nset -gx CERTORIX_API_TOKEN '${fresh}'\n`);
    expect(lstatSync(h.path('.config/fish/config.fish')).isSymbolicLink()).toBe(true);
    expect(statSync(h.path('.config/Claude/claude_desktop_config.json')).mode & 0o777).toBe(0o640);
    expect(tempFilesUnder(h.home)).toEqual([]);
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ fingerprint: string; newFingerprint: string; status: string; files: unknown[]; restart: string[] }> };
    expect(doc.rotations).toHaveLength(1);
    expect(doc.rotations[0]).toMatchObject({ fingerprint: fingerprint(tok), newFingerprint: fingerprint(fresh), status: 'rotated' });
    expect(doc.rotations[0]!.files.length).toBe(FIXTURES.length + 1);
    expect(doc.rotations[0]!.restart.join('\n')).toMatch(/Claude Desktop must be quit fully/);
    expect(doc.rotations[0]!.restart.join('\n')).toMatch(/Cursor restarts a changed server by itself/);

    const hist = await runCli(['history', '--json'], { env: h.env });
    const events = (JSON.parse(hist.stdout) as { events: Array<Record<string, unknown>> }).events;
    expect(events[0]).toMatchObject({ type: 'rotated', fingerprint: fingerprint(tok), newFingerprint: fingerprint(fresh), source: 'manual' });
    expect((events[0]!.files as string[]).length).toBe(FIXTURES.length + 1);

    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code).toBe(0);
    const tokens = (JSON.parse(st.stdout) as { tokens: Array<{ fingerprint: string; state: string; ageDays: number }> }).tokens;
    expect(tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(fresh), state: 'ok', ageDays: 0 })]);

    const state = await h.stateFiles();
    expect(findLeaks([tok, fresh, GITHUB_TOKEN], [r.stdout, r.stderr, hist.stdout, st.stdout])).toEqual([]);
    // The old (dead) token may rest in the backups; the live one nowhere.
    expect(findLeaks([fresh], state.map((f) => f.bytes))).toEqual([]);
    for (const f of state) expect(statSync(f.file).mode & 0o777).toBe(0o600);
  });

  it('--dry-run regenerates nothing and writes nothing (it only asks GET /v1/token)', async () => {
    const before = api.requests.length;
    const snap = await Promise.all(FIXTURES.map((f) => h.read(f.rel)));
    const r = await runCli(['rotate', '--dry-run'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Would rotate token ' + fingerprint(tok));
    expect(r.stdout).toContain('~/.claude.json');
    expect(api.requests.slice(before).filter((q) => q.path === '/v1/token/regenerate')).toEqual([]);
    expect(api.requests.slice(before).every((q) => q.method === 'GET' && q.path === '/v1/token')).toBe(true);
    expect(await Promise.all(FIXTURES.map((f) => h.read(f.rel)))).toEqual(snap);
    expect(api.isLive(tok)).toBe(true);
  });

  it('401 leaves every config untouched and status shows invalid (exit 2)', async () => {
    await runCli(['scan'], { env: h.env });
    api.fault({ path: '/v1/token/regenerate' }, { kind: 'status', status: 401 });
    const snap = await Promise.all(FIXTURES.map((f) => h.read(f.rel)));
    const r = await runCli(['rotate'], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(fingerprint(tok));
    expect(r.stderr).toMatch(/set-token/);
    expect(await Promise.all(FIXTURES.map((f) => h.read(f.rel)))).toEqual(snap);
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code).toBe(2);
    expect((JSON.parse(st.stdout) as { tokens: Array<{ state: string }> }).tokens[0]!.state).toBe('invalid');
  });

  it('a lost response is replayed with the same Idempotency-Key: exactly one new token', async () => {
    api.fault({ path: '/v1/token/regenerate' }, { kind: 'reset-after' });
    const before = regenerations();
    const r = await runCli(['rotate'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(regenerations() - before).toBe(1);
    const keys = api.requests.filter((q) => q.path === '/v1/token/regenerate').slice(-2).map((q) => q.idempotencyKey);
    expect(keys[0]).toBeDefined();
    expect(keys[0]).toBe(keys[1]);
    const fresh = liveToken();
    for (const f of FIXTURES) expect(await h.read(f.rel)).toBe(f.content(fresh));
  });

  it('a config that cannot be written stops the rotation before the API is called', async () => {
    // Root ignores modes, so make the directory unusable instead: a file where the directory should accept a temp file is not enough; use chattr when possible.
    const target = h.path('.cursor/mcp.json');
    let immutable = false;
    try {
      execFileSync('chattr', ['+i', target], { stdio: 'ignore' });
      immutable = true;
    } catch {
      /* no chattr or unsupported filesystem */
    }
    if (!immutable) {
      if (process.getuid?.() === 0) return; // root can write anything else we could set up here
      await chmod(path.dirname(target), 0o500);
    }
    try {
      const before = regenerations();
      const snap = await Promise.all(FIXTURES.map((f) => h.read(f.rel)));
      const r = await runCli(['rotate'], { env: h.env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(target);
      expect(r.stderr).toMatch(/Preflight failed/);
      expect(regenerations()).toBe(before);
      expect(api.isLive(tok)).toBe(true);
      expect(await Promise.all(FIXTURES.map((f) => h.read(f.rel)))).toEqual(snap);
    } finally {
      if (immutable) execFileSync('chattr', ['-i', target]);
      else await chmod(path.dirname(target), 0o700);
    }
  });

  it("a concurrent writer's edit to ~/.claude.json during the regenerate call survives", async () => {
    api.fault({ path: '/v1/token/regenerate' }, { kind: 'delay', ms: 1500 });
    const child = spawn(process.execPath, [CLI, 'rotate'], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Wait until the call is in flight, then edit the file the way Claude Code does.
    for (let i = 0; i < 100 && !api.requests.some((q) => q.path === '/v1/token/regenerate'); i++) await new Promise((r) => setTimeout(r, 20));
    const p = h.path('.claude.json');
    const edited = (await readFile(p, 'utf8')).replace('"numStartups": 42', '"numStartups": 43');
    await writeFile(p, edited);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, stderr).toBe(0);
    const fresh = liveToken();
    const fixture = FIXTURES.find((f) => f.client === 'claude-code')!;
    expect(await h.read('.claude.json')).toBe(fixture.content(fresh).replace('"numStartups": 42', '"numStartups": 43'));
  });

  it("respects Cline's <file>.lock directory", async () => {
    const lockDir = h.path('.cline/data/settings/cline_mcp_settings.json.lock');
    await mkdir(lockDir);
    const t0 = Date.now();
    setTimeout(() => void rmdir(lockDir), 800);
    const r = await runCli(['rotate'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect(existsSync(lockDir)).toBe(false);
    const fixture = FIXTURES.find((f) => f.client === 'cline')!;
    expect(await h.read(fixture.rel)).toBe(fixture.content(liveToken()));
  });

  it('runs post-rotate hooks with fingerprints and files, never the token', async () => {
    const out = h.path('hook-out.txt');
    await h.settings({ retry: { attempts: 3, baseMs: 5, maxMs: 20 }, hooks: { postRotate: [`env > "${out}"`, 'exit 3'] } });
    const r = await runCli(['rotate'], { env: { ...h.env, CERTORIX_API_TOKEN: tok } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/hook "exit 3" failed/);
    const env = await readFile(out, 'utf8');
    const fresh = liveToken();
    expect(env).toContain(`MCP_TOKEN_ROTATOR_OLD_FINGERPRINT=${fingerprint(tok)}`);
    expect(env).toContain(`MCP_TOKEN_ROTATOR_NEW_FINGERPRINT=${fingerprint(fresh)}`);
    expect(env).toContain(h.path('.claude.json'));
    expect(findLeaks([tok, fresh], [env])).toEqual([]);
  });
});

describe('tokens that formats must escape', () => {
  afterEach(() => h.cleanup());
  it.each([['quote and backslash', 'ctx_a"b\\c'], ["single quote and dollar", "ctx_it's$HOME"], ['space and unicode', 'ctx_a b\u00e9c']])(
    'a new token with %s is written so every parser reads it back exactly',
    async (_name, weird) => {
      await setup();
      const prev = api.tokenFactory;
      api.tokenFactory = () => weird + Math.random().toString(36).slice(2, 8);
      try {
        const r = await runCli(['rotate'], { env: h.env });
        expect(r.code, r.stderr).toBe(0);
      } finally {
        api.tokenFactory = prev;
      }
      const fresh = liveToken();
      expect(fresh.startsWith(weird)).toBe(true);
      const desktop = parseJsonc(await h.read('.config/Claude/claude_desktop_config.json')) as { mcpServers: { certorix: { env: Record<string, string> } } };
      expect(desktop.mcpServers.certorix.env.CERTORIX_API_TOKEN).toBe(fresh);
      const codex = parseToml(await h.read('.codex/config.toml')) as { mcp_servers: { certorix: { env: Record<string, string> } } };
      expect(codex.mcp_servers.certorix.env.CERTORIX_API_TOKEN).toBe(fresh);
      const goose = parseYaml(await h.read('.config/goose/config.yaml')) as { extensions: { certorix: { envs: Record<string, string> } } };
      expect(goose.extensions.certorix.envs.CERTORIX_API_TOKEN).toBe(fresh);
      const bash = execFileSync('bash', ['-c', `PS1=x; source "${h.path('.bashrc')}" >/dev/null 2>&1; printf %s "$CERTORIX_API_TOKEN"`], { env: { HOME: h.home, PS1: 'x', PATH: process.env.PATH } }).toString();
      expect(bash).toBe(fresh);
    },
  );
});

describe('a minted token that no config can hold', () => {
  afterEach(() => h.cleanup());
  it('fails the rotation at once (no endless replay) and status shows the token invalid', async () => {
    await setup();
    const prev = api.tokenFactory;
    api.tokenFactory = () => 'ctx_${unusable}' + Math.random().toString(36).slice(2);
    const snap = await Promise.all(FIXTURES.map((f) => h.read(f.rel)));
    let r;
    try {
      r = await runCli(['rotate'], { env: h.env });
    } finally {
      api.tokenFactory = prev;
    }
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/set-token/);
    expect(await Promise.all(FIXTURES.map((f) => h.read(f.rel)))).toEqual(snap);
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code).toBe(2);
    expect((JSON.parse(st.stdout) as { tokens: Array<{ state: string }> }).tokens.map((t) => t.state)).toEqual(['invalid']);
  });
});

describe('set-token', () => {
  beforeEach(() => setup());
  afterEach(() => h.cleanup());

  it('rejects a token the API rejects, touching nothing', async () => {
    const snap = await Promise.all(FIXTURES.map((f) => h.read(f.rel)));
    const r = await runCli(['set-token'], { env: h.env, input: 'ctx_not_a_real_token_at_all\n' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rejects the token/);
    expect(r.stderr).not.toContain('ctx_not_a_real_token_at_all');
    expect(await Promise.all(FIXTURES.map((f) => h.read(f.rel)))).toEqual(snap);
  });

  it('adopts a token regenerated in the web UI everywhere', async () => {
    await runCli(['scan'], { env: h.env });
    // The user clicks "Regenerate token" in the web UI: the old one dies at once.
    const fresh = api.addToken({ email: EMAIL, role: 'editor' });
    api.revoke(tok);
    expect(api.isLive(tok)).toBe(false);
    const r = await runCli(['set-token', '--json'], { env: h.env, input: fresh + '\n' });
    expect(r.code, r.stderr).toBe(0);
    for (const f of FIXTURES) expect(await h.read(f.rel), f.client).toBe(f.content(fresh));
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<Record<string, unknown>> };
    expect(hist.events[0]).toMatchObject({ type: 'adopted', source: 'set-token', fingerprint: fingerprint(tok), newFingerprint: fingerprint(fresh) });
    expect(findLeaks([tok, fresh], [r.stdout, r.stderr])).toEqual([]);
    expect(findLeaks([fresh], (await h.stateFiles()).map((f) => f.bytes))).toEqual([]);
  });

  it.each([
    ['empty', ''],
    ['whitespace only', '   \n\t\n'],
    ['multi-line', 'ctx_one\nctx_two\n'],
    ['huge', 'x'.repeat(100_000)],
  ])('refuses %s stdin with a clear message', async (_n, input) => {
    const r = await runCli(['set-token'], { env: h.env, input });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/token|stdin/i);
  });
});

describe('revoke-now', () => {
  afterEach(() => h.cleanup());
  it('refuses without --yes when not on a terminal', async () => {
    await setup();
    const r = await runCli(['revoke-now'], { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--yes');
    expect(api.isLive(tok)).toBe(true);
  });

  it('regenerates every tracked token of two accounts and rewrites every config', async () => {
    h = await makeHome(api.url);
    const a = api.addToken({ email: 'leak-a@example.com' });
    const b = api.addToken({ email: 'leak-b@example.com' });
    await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { a: { command: 'x', env: { CERTORIX_API_TOKEN: a } }, b: { command: 'y', env: { CERTORIX_API_TOKEN: b } } } }, null, 2));
    await h.write('.gemini/settings.json', JSON.stringify({ mcpServers: { b: { command: 'y', env: { CERTORIX_API_TOKEN: b } } } }));
    const r = await runCli(['revoke-now', '--yes', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(api.isLive(a)).toBe(false);
    expect(api.isLive(b)).toBe(false);
    const na = liveToken('leak-a@example.com');
    const nb = liveToken('leak-b@example.com');
    const cursor = JSON.parse(await h.read('.cursor/mcp.json')) as { mcpServers: Record<string, { env: { CERTORIX_API_TOKEN: string } }> };
    expect(cursor.mcpServers.a!.env.CERTORIX_API_TOKEN).toBe(na);
    expect(cursor.mcpServers.b!.env.CERTORIX_API_TOKEN).toBe(nb);
    expect(await h.read('.gemini/settings.json')).toBe(JSON.stringify({ mcpServers: { b: { command: 'y', env: { CERTORIX_API_TOKEN: nb } } } }));
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ source: string }> };
    expect(hist.events.filter((e) => e.source === 'revoke-now')).toHaveLength(2);
  });
});
