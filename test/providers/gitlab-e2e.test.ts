/**
 * GitLab end to end: the built CLI (and daemon) against the fake GitLab API, with the token
 * in Claude Desktop's and Cursor's configs and a shell start-up file, each entry naming the
 * fake as its own GITLAB_API_URL. A fake Certorix API is configured too, and must never see
 * a GitLab token.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startFakeGitlab, GITLAB_ROTATE_PATH, type FakeGitlab } from '../fake/gitlab.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, ROOT, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { callLoop, startClient, type RunningClient, type StdioEntry } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';

const CLAUDE = '.config/Claude/claude_desktop_config.json';
const CURSOR = '.cursor/mcp.json';
const GITLAB_SERVER = path.join(ROOT, 'dist/test/fake/gitlab-server.js');
const DAY = 86_400_000;

let gl: FakeGitlab;
let cx: FakeCertorix;
beforeAll(async () => {
  gl = await startFakeGitlab();
  cx = await startFakeCertorix();
});
afterAll(async () => {
  await gl.close();
  await cx.close();
});

let h: TempHome | undefined;
const clients: RunningClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close().catch(() => undefined);
  await h?.cleanup();
  h = undefined;
});

interface StatusToken {
  fingerprint: string;
  provider: string;
  state: string;
  ageDays: number | null;
  expiresAt: string | null;
  locations: Array<{ path: string }>;
}

/** A HOME whose configs hold `tok` in a GitLab server entry (and Cursor, and ~/.zshrc). */
async function world(tok: string, opts: { serverCommand?: StdioEntry } = {}): Promise<TempHome> {
  const home = await makeHome(cx.url);
  h = home;
  const entry = opts.serverCommand ?? { command: 'npx', args: ['-y', '@modelcontextprotocol/server-gitlab'], env: {} };
  const env = { ...entry.env, GITLAB_PERSONAL_ACCESS_TOKEN: tok, GITLAB_API_URL: gl.url };
  await home.write(CLAUDE, `${JSON.stringify({ mcpServers: { gitlab: { command: entry.command, args: entry.args, env } } }, null, 2)}\n`);
  if (!opts.serverCommand) {
    await home.write(CURSOR, `${JSON.stringify({ mcpServers: { gitlab: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-gitlab'], env: { GITLAB_PERSONAL_ACCESS_TOKEN: tok, GITLAB_API_URL: gl.url } } } }, null, 2)}\n`);
    await home.write('.zshrc', `export GITLAB_API_URL=${gl.url}\nexport GITLAB_PERSONAL_ACCESS_TOKEN=${tok}\n`);
  }
  return home;
}

async function status(home: TempHome): Promise<{ code: number | null; tokens: StatusToken[]; stderr: string }> {
  const r = await runCli(['status', '--json'], { env: home.env });
  return { code: r.code, tokens: (JSON.parse(r.stdout) as { tokens: StatusToken[] }).tokens, stderr: r.stderr };
}

const certorixSawNothing = (...tokens: string[]): void => {
  const fps = new Set(tokens.map(fingerprint));
  expect(cx.requests.filter((r) => r.bearerFingerprint !== undefined && fps.has(r.bearerFingerprint))).toEqual([]);
};

describe('GitLab end to end', () => {
  it('scan/status: provider, expiresAt, age from created_at; due when it expires within warnBeforeExpiryDays', async () => {
    const soon = gl.addToken({ ageDays: 80, expiresInDays: 10 });
    const home = await world(soon);
    const later = gl.addToken({ ageDays: 5, expiresInDays: 100 });
    await home.write('.codeium/windsurf/mcp_config.json', JSON.stringify({ mcpServers: { gl: { command: 'gitlab-mcp', env: { GITLAB_PERSONAL_ACCESS_TOKEN: later, GITLAB_API_URL: gl.url } } } }));
    const scan = await runCli(['scan', '--json'], { env: home.env });
    expect(scan.code, scan.stderr).not.toBe(2);
    const s = await status(home);
    expect(s.code, s.stderr).toBe(1);
    const a = s.tokens.find((t) => t.fingerprint === fingerprint(soon))!;
    const b = s.tokens.find((t) => t.fingerprint === fingerprint(later))!;
    expect(a).toMatchObject({ provider: 'gitlab', state: 'due', ageDays: 80, expiresAt: gl.get(soon)!.expiresAt + 'T00:00:00.000Z' });
    expect(a.locations.map((l) => l.path).sort()).toEqual([home.path(CURSOR), home.path(CLAUDE), home.path('.zshrc')].sort());
    expect(b).toMatchObject({ provider: 'gitlab', state: 'ok', ageDays: 5 });
    // The human view names the expiry; nothing prints a token.
    const human = await runCli(['status'], { env: home.env });
    expect(findLeaks([soon, later], [human.stdout, human.stderr, s.stderr, scan.stdout, scan.stderr])).toEqual([]);
    certorixSawNothing(soon, later);
  });

  it('the daemon warns before a GitLab token expires, naming GitLab and the rotate command', async () => {
    const tok = gl.addToken({ ageDays: 20, expiresInDays: 5 });
    const home = await world(tok);
    const d = spawnDaemon({ ...home.env, MCP_TOKEN_ROTATOR_TICK_MS: '50' });
    try {
      const warn = await d.waitFor((l) => l.level === 40 && l.fingerprint === fingerprint(tok) && l.expiresAt !== undefined, 15_000);
      expect(warn).toMatchObject({ provider: 'gitlab', warnBeforeExpiryDays: 14 });
      expect(String(warn.msg)).toContain('GitLab token');
      expect(String(warn.command)).toContain(`rotate --fingerprint ${fingerprint(tok)}`);
      expect(findLeaks([tok], [d.raw()])).toEqual([]);
    } finally {
      await d.stop();
    }
    expect(gl.isActive(tok)).toBe(true);
  });

  it('rotate: one self-rotate keeping the lifetime, every config rewritten, the old token dead', async () => {
    const tok = gl.addToken({ ageDays: 60, expiresInDays: 30 });
    const home = await world(tok);
    const before = gl.rotateCalls();
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok), '--json'], { env: home.env });
    expect(r.code, r.stderr).toBe(0);
    expect(gl.rotateCalls() - before).toBe(1);
    expect(gl.isActive(tok)).toBe(false);
    const fresh = gl.get(tok)!.rotatedTo!;
    expect(gl.isActive(fresh)).toBe(true);
    const sent = JSON.parse(gl.requests.filter((q) => q.path === GITLAB_ROTATE_PATH).at(-1)!.body) as { expires_at: string };
    expect(Math.round((Date.parse(sent.expires_at) - Date.parse(new Date().toISOString().slice(0, 10))) / DAY)).toBe(90);
    for (const rel of [CLAUDE, CURSOR, '.zshrc']) {
      const text = await home.read(rel);
      expect(text, rel).toContain(fresh);
      expect(text, rel).not.toContain(tok);
    }
    expect(findLeaks([tok, fresh], [r.stdout, r.stderr])).toEqual([]);
    const s = await status(home);
    expect(s.tokens.find((t) => t.fingerprint === fingerprint(fresh))).toMatchObject({ provider: 'gitlab', expiresAt: `${sent.expires_at}T00:00:00.000Z` });
    certorixSawNothing(tok, fresh);
  });

  it('set-token: the new token is checked with GitLab only, then put everywhere', async () => {
    const tok = gl.addToken({ ageDays: 300 });
    const home = await world(tok);
    await runCli(['scan'], { env: home.env });
    gl.revoke(tok);
    const made = gl.addToken();
    const r = await runCli(['set-token', '--fingerprint', fingerprint(tok)], { env: home.env, input: made });
    expect(r.code, r.stderr).toBe(0);
    for (const rel of [CLAUDE, CURSOR, '.zshrc']) expect(await home.read(rel), rel).toContain(made);
    expect(gl.requests.some((q) => q.tokenFingerprint === fingerprint(made))).toBe(true);
    certorixSawNothing(tok, made);
  });

  it('a lost rotate answer: exactly one rotate call, even after another rotate and the daemon; the token shows invalid', async () => {
    const tok = gl.addToken({ ageDays: 100 });
    const home = await world(tok);
    await runCli(['scan'], { env: home.env });
    const before = gl.rotateCalls();
    gl.fault({ path: GITLAB_ROTATE_PATH }, { kind: 'reset-after' });
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/-/user_settings/personal_access_tokens');
    expect(r.stderr).toContain('set-token');
    expect(gl.rotateCalls() - before).toBe(1);
    const fresh = gl.get(tok)!.rotatedTo!;
    // Nothing repeats the call: not a second rotate, not the daemon's recovery at start.
    const again = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    expect(again.code).toBe(2);
    const d = spawnDaemon({ ...home.env, MCP_TOKEN_ROTATOR_TICK_MS: '50' });
    try {
      await d.waitFor((l) => l.msg === 'daemon started', 15_000);
      await new Promise((res) => setTimeout(res, 500));
    } finally {
      await d.stop();
    }
    expect(gl.rotateCalls() - before).toBe(1);
    // Had it been repeated with the old token, GitLab would have revoked this one.
    expect(gl.isActive(fresh)).toBe(true);
    for (const rel of [CLAUDE, CURSOR]) expect(await home.read(rel)).toContain(tok);
    const s = await status(home);
    expect(s.tokens.find((t) => t.fingerprint === fingerprint(tok))?.state).toBe('invalid');
  });

  it('403 insufficient_scope: rotate exits 2 naming the scope to add; nothing changes', async () => {
    const tok = gl.addToken({ scopes: ['read_api'] });
    const home = await world(tok);
    const cfg = await home.read(CLAUDE);
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('self_rotate');
    expect(r.stderr).toContain(`${new URL(gl.url).origin}/-/user_settings/personal_access_tokens`);
    expect(gl.isActive(tok)).toBe(true);
    expect(await home.read(CLAUDE)).toBe(cfg);
  });

  it('an entry naming a plain-http GitLab elsewhere: its token is never sent', async () => {
    const tok = gl.addToken();
    const home = await makeHome(cx.url);
    h = home;
    await home.write(CLAUDE, JSON.stringify({ mcpServers: { gitlab: { command: 'gitlab-mcp', env: { GITLAB_PERSONAL_ACCESS_TOKEN: tok, GITLAB_API_URL: 'http://gitlab.internal.example/api/v4' } } } }));
    const r = await runCli(['scan'], { env: home.env });
    expect(r.stderr).toContain('Refusing plain http:// for gitlab.internal.example');
    expect(r.stderr).toContain('No GitLab token is sent there');
    const rot = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    expect(rot.code).toBe(2);
    expect(rot.stderr).toContain('GITLAB_API_URL');
    expect(gl.requests.some((q) => q.tokenFingerprint === fingerprint(tok))).toBe(false);
    certorixSawNothing(tok);
  });

  it('broker mode: a stdio GitLab server through exec survives a GitLab rotation with 0 failed calls', async () => {
    const tok = gl.addToken({ ageDays: 100, name: 'broker' });
    const home = await world(tok, { serverCommand: { command: process.execPath, args: [GITLAB_SERVER], env: {} } });
    const en = await runCli(['broker', 'enable', '--json'], { env: home.env });
    expect(en.code, en.stderr).toBe(0);
    const converted = JSON.parse(await readFile(home.path(CLAUDE), 'utf8')) as { mcpServers: { gitlab: StdioEntry } };
    expect(JSON.stringify(converted)).not.toContain(tok);
    const c = await startClient(converted.mcpServers.gitlab);
    clients.push(c);
    const loop = callLoop(c.client, { slowEvery: 5, slowMs: 150 });
    await new Promise((res) => setTimeout(res, 300));
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok), '--json'], { env: home.env });
    expect(r.code, r.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 800));
    const stats = await loop.stop();
    const fresh = gl.get(tok)!.rotatedTo!;
    expect(stats.failures).toEqual([]);
    expect(stats.ok).toBeGreaterThan(5);
    expect(stats.fps.has(fingerprint(fresh))).toBe(true);
    expect(gl.isActive(tok)).toBe(false);
    expect(gl.isActive(fresh)).toBe(true);
    expect(findLeaks([tok, fresh], [c.stderr()])).toEqual([]);
  });
});
