/**
 * Cloudflare end to end: the built CLI against the fake Cloudflare API (CLOUDFLARE_API_URL),
 * the token in Claude Desktop's and Cursor's configs. A fake Certorix API is configured too,
 * and must never see a Cloudflare token.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCloudflare, type FakeCloudflare } from '../fake/cloudflare.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { fingerprint } from '../../src/fingerprint.js';

const CLAUDE = '.config/Claude/claude_desktop_config.json';
const CURSOR = '.cursor/mcp.json';

let cf: FakeCloudflare;
let cx: FakeCertorix;
beforeAll(async () => {
  cf = await startFakeCloudflare();
  cx = await startFakeCertorix();
});
afterAll(async () => {
  await cf.close();
  await cx.close();
});

let h: TempHome | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

interface StatusToken {
  fingerprint: string;
  provider: string;
  state: string;
  ageDays: number | null;
  expiresAt: string | null;
}

async function world(tok: string): Promise<TempHome> {
  const home = await makeHome(cx.url);
  h = home;
  home.env.CLOUDFLARE_API_URL = cf.url;
  const entry = { command: 'npx', args: ['-y', '@cloudflare/mcp-server-cloudflare', 'run'], env: { CLOUDFLARE_API_TOKEN: tok, CLOUDFLARE_ACCOUNT_ID: '0123456789abcdef0123456789abcdef' } };
  await home.write(CLAUDE, `${JSON.stringify({ mcpServers: { cloudflare: entry } }, null, 2)}\n`);
  await home.write(CURSOR, `${JSON.stringify({ mcpServers: { cloudflare: entry } }, null, 2)}\n`);
  return home;
}

async function status(home: TempHome): Promise<{ code: number | null; tokens: StatusToken[] }> {
  const r = await runCli(['status', '--json'], { env: home.env });
  return { code: r.code, tokens: (JSON.parse(r.stdout) as { tokens: StatusToken[] }).tokens };
}

const certorixSawNothing = (...tokens: string[]): void => {
  const fps = new Set(tokens.map(fingerprint));
  expect(cx.requests.filter((r) => r.bearerFingerprint !== undefined && fps.has(r.bearerFingerprint))).toEqual([]);
};

describe('Cloudflare end to end', () => {
  it('scan/status: provider, expiresAt, no age; due when it expires within warnBeforeExpiryDays', async () => {
    const soon = cf.addToken({ expiresInDays: 5 });
    const home = await world(soon);
    const never = cf.addToken();
    await home.write('.codeium/windsurf/mcp_config.json', JSON.stringify({ mcpServers: { cf: { command: 'cf-mcp', env: { CLOUDFLARE_API_TOKEN: never } } } }));
    await runCli(['scan'], { env: home.env });
    const s = await status(home);
    expect(s.code).toBe(1);
    expect(s.tokens.find((t) => t.fingerprint === fingerprint(soon))).toMatchObject({ provider: 'cloudflare', state: 'due', ageDays: null, expiresAt: new Date(cf.get(soon)!.expiresOn!).toISOString() });
    expect(s.tokens.find((t) => t.fingerprint === fingerprint(never))).toMatchObject({ provider: 'cloudflare', state: 'ok', ageDays: null, expiresAt: null });
    certorixSawNothing(soon, never);
  });

  it('rotate: one roll, configs rewritten, the old value dead', async () => {
    const tok = cf.addToken();
    const home = await world(tok);
    const before = cf.rollCalls();
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok), '--json'], { env: home.env });
    expect(r.code, r.stderr).toBe(0);
    expect(cf.rollCalls() - before).toBe(1);
    expect(cf.isLive(tok)).toBe(false);
    const fresh = cf.all().find((t) => t.live && t.id === cf.get(tok)!.id)!.token;
    for (const rel of [CLAUDE, CURSOR]) {
      const text = await home.read(rel);
      expect(text).toContain(fresh);
      expect(text).not.toContain(tok);
    }
    expect(findLeaks([tok, fresh], [r.stdout, r.stderr])).toEqual([]);
    certorixSawNothing(tok, fresh);
  });

  it('set-token: checked with Cloudflare only, then put everywhere', async () => {
    const tok = cf.addToken();
    const home = await world(tok);
    await runCli(['scan'], { env: home.env });
    cf.revoke(tok);
    const made = cf.addToken();
    const r = await runCli(['set-token', '--fingerprint', fingerprint(tok)], { env: home.env, input: made });
    expect(r.code, r.stderr).toBe(0);
    for (const rel of [CLAUDE, CURSOR]) expect(await home.read(rel)).toContain(made);
    expect(cf.requests.some((q) => q.tokenFingerprint === fingerprint(made))).toBe(true);
    certorixSawNothing(tok, made);
  });

  it('a lost roll answer is never repeated; the token shows invalid and the message names the page and set-token', async () => {
    const tok = cf.addToken();
    const home = await world(tok);
    await runCli(['scan'], { env: home.env });
    const before = cf.rollCalls();
    cf.fault({ method: 'PUT' }, { kind: 'reset-after' });
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('https://dash.cloudflare.com/profile/api-tokens');
    expect(r.stderr).toContain('set-token');
    // One message, not a log line and the error saying the same.
    expect(r.stderr.split('was sent but').length - 1).toBe(1);
    await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    const d = spawnDaemon({ ...home.env, MCP_TOKEN_ROTATOR_TICK_MS: '50' });
    try {
      await d.waitFor((l) => l.msg === 'daemon started', 15_000);
      await new Promise((res) => setTimeout(res, 500));
    } finally {
      await d.stop();
    }
    expect(cf.rollCalls() - before).toBe(1);
    expect((await status(home)).tokens.find((t) => t.fingerprint === fingerprint(tok))?.state).toBe('invalid');
  });

  it('403 without "API Tokens Write": rotate exits 2 saying which permission to add', async () => {
    const tok = cf.addToken({ canWriteTokens: false });
    const home = await world(tok);
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: home.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('API Tokens Write');
    expect(r.stderr).toContain('https://dash.cloudflare.com/profile/api-tokens');
    expect(cf.isLive(tok)).toBe(true);
    expect(await home.read(CLAUDE)).toContain(tok);
  });
});
