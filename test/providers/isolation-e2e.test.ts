/**
 * One HOME with a Certorix, a GitLab and a Cloudflare token side by side, each fake recording
 * every request: after scan, a plain `rotate` (every rotatable token) and status, each fake
 * has seen only its own provider's tokens. The proof that a token is sent only to its own
 * provider's API host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitlab, type FakeGitlab } from '../fake/gitlab.js';
import { startFakeCloudflare, type FakeCloudflare } from '../fake/cloudflare.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';

let gl: FakeGitlab;
let cf: FakeCloudflare;
let cx: FakeCertorix;
let h: TempHome;
beforeAll(async () => {
  [gl, cf, cx] = await Promise.all([startFakeGitlab(), startFakeCloudflare(), startFakeCertorix()]);
  h = await makeHome(cx.url);
  h.env.CLOUDFLARE_API_URL = cf.url;
});
afterAll(async () => {
  await h.cleanup();
  await Promise.all([gl.close(), cf.close(), cx.close()]);
});

describe('tokens of three providers in one config', () => {
  it('each API sees only its own tokens, through scan, rotate and status', async () => {
    const ctx = cx.addToken({ email: 'iso@example.com', ageDays: 10 });
    const glt = gl.addToken({ ageDays: 10, expiresInDays: 80 });
    const cft = cf.addToken();
    const unrelated = 'ghp_NotTrackedHere0123456789abcdefABCDEF';
    await h.write(
      '.config/Claude/claude_desktop_config.json',
      JSON.stringify({
        mcpServers: {
          certorix: { command: 'npx', args: ['-y', '@certorix/mcp'], env: { CERTORIX_API_TOKEN: ctx } },
          gitlab: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-gitlab'], env: { GITLAB_PERSONAL_ACCESS_TOKEN: glt, GITLAB_API_URL: gl.url } },
          cloudflare: { command: 'npx', args: ['-y', '@cloudflare/mcp-server-cloudflare'], env: { CLOUDFLARE_API_TOKEN: cft, SOME_OTHER_TOKEN: unrelated } },
        },
      }),
    );
    const scan = await runCli(['scan', '--json'], { env: h.env });
    expect(scan.code, scan.stderr).toBe(0);
    const rot = await runCli(['rotate', '--json'], { env: h.env });
    expect(rot.code, rot.stderr).toBe(0);
    const st = await runCli(['status', '--json'], { env: h.env });
    const tokens = (JSON.parse(st.stdout) as { tokens: Array<{ fingerprint: string; provider: string }> }).tokens;
    expect(tokens.map((t) => t.provider).sort()).toEqual(['certorix', 'cloudflare', 'gitlab']);
    expect(tokens.map((t) => t.fingerprint)).not.toContain(fingerprint(unrelated));

    const own = {
      certorix: new Set(cx.all().map((t) => fingerprint(t.token))),
      gitlab: new Set(gl.all().map((t) => fingerprint(t.token))),
      cloudflare: new Set(cf.all().map((t) => fingerprint(t.token))),
    };
    // Every token rotated (each fake minted one), and every request carried one of its own.
    expect([own.certorix.size, own.gitlab.size, own.cloudflare.size]).toEqual([2, 2, 2]);
    const seen = (fps: Array<string | undefined>) => new Set(fps.filter((x): x is string => x !== undefined));
    const byCx = seen(cx.requests.map((r) => r.bearerFingerprint));
    const byGl = seen(gl.requests.map((r) => r.tokenFingerprint));
    const byCf = seen(cf.requests.map((r) => r.tokenFingerprint));
    for (const fp of byCx) expect(own.certorix.has(fp), `certorix saw ${fp}`).toBe(true);
    for (const fp of byGl) expect(own.gitlab.has(fp), `gitlab saw ${fp}`).toBe(true);
    for (const fp of byCf) expect(own.cloudflare.has(fp), `cloudflare saw ${fp}`).toBe(true);
    expect([byCx.size, byGl.size, byCf.size].every((n) => n > 0)).toBe(true);
    expect(findLeaks([ctx, glt, cft, unrelated], [scan.stdout, scan.stderr, rot.stdout, rot.stderr, st.stdout, st.stderr])).toEqual([]);
  });

  it('revoke-now regenerates GitLab and Cloudflare tokens and exits 2 naming one it could not (no "API Tokens Write")', async () => {
    const home = await makeHome(cx.url);
    try {
      home.env.CLOUDFLARE_API_URL = cf.url;
      const glt = gl.addToken({ ageDays: 5 });
      const stuck = cf.addToken({ canWriteTokens: false });
      await home.write(
        '.cursor/mcp.json',
        JSON.stringify({
          mcpServers: {
            gitlab: { command: 'gitlab-mcp', env: { GITLAB_PERSONAL_ACCESS_TOKEN: glt, GITLAB_API_URL: gl.url } },
            cloudflare: { command: 'cf-mcp', env: { CLOUDFLARE_API_TOKEN: stuck } },
          },
        }),
      );
      const r = await runCli(['revoke-now', '--yes'], { env: home.env });
      expect(r.code, r.stdout).toBe(2);
      expect(gl.isActive(glt)).toBe(false);
      expect(cf.isLive(stuck)).toBe(true);
      expect(r.stderr + r.stdout).toContain(fingerprint(stuck));
      expect(r.stderr + r.stdout).toContain('https://dash.cloudflare.com/profile/api-tokens');
      expect(await home.read('.cursor/mcp.json')).toContain(gl.get(glt)!.rotatedTo!);
    } finally {
      await home.cleanup();
    }
  });

  it('settings providers: { gitlab: false } leaves GitLab tokens alone: not tracked, never sent', async () => {
    const home = await makeHome(cx.url);
    try {
      const glt = gl.addToken();
      await home.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, requestTimeoutMs: 2000, broker: { store: 'file' }, providers: { gitlab: false } });
      await home.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { gitlab: { command: 'gitlab-mcp', env: { GITLAB_PERSONAL_ACCESS_TOKEN: glt, GITLAB_API_URL: gl.url } } } }));
      const r = await runCli(['scan', '--json'], { env: home.env });
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { tokens: unknown[] }).tokens).toEqual([]);
      expect(gl.requests.some((q) => q.tokenFingerprint === fingerprint(glt))).toBe(false);
    } finally {
      await home.cleanup();
    }
  });
});
