/**
 * GitHub end to end, against test/fake/github.ts (and the Certorix fake beside it): the
 * entries that hold a GitHub token, scan/status with expiry and the due state, `rotate`
 * refused with the token page, `rotate` of everything listing GitHub's with what to do,
 * `set-token` fan-out to every form, `revoke-now` naming the token it cannot revoke, and
 * both fakes' request logs showing no token ever reaches another provider's API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { startFakeGitHub, type FakeGitHub } from '../fake/github.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';
import { LOCAL_SERVER, startClient, type StdioEntry } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';

let certorix: FakeCertorix;
let github: FakeGitHub;
beforeAll(async () => {
  [certorix, github] = await Promise.all([startFakeCertorix(), startFakeGitHub()]);
});
afterAll(async () => {
  await Promise.all([certorix.close(), github.close()]);
});

const DAY = 86_400_000;
const inDays = (d: number) => new Date(Date.now() + d * DAY).toISOString();

interface StatusDoc {
  tokens: Array<{ fingerprint: string; provider: string; role: string | null; ageDays: number | null; expiresAt: string | null; state: string; locations: Array<{ path: string; client: string }> }>;
}

/** Every GitHub form the contract names, a Certorix entry beside, and the traps. */
async function writeConfigs(h: TempHome, gh: string, crtx: string, ghOther: string): Promise<void> {
  // Claude Desktop: the docker form of the GitHub MCP server.
  await h.write(
    '.config/Claude/claude_desktop_config.json',
    JSON.stringify(
      {
        mcpServers: {
          certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: crtx } },
          github: { command: 'docker', args: ['run', '-i', '--rm', '-e', 'GITHUB_PERSONAL_ACCESS_TOKEN', 'ghcr.io/github/github-mcp-server'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: gh } },
          // Trap: a GitHub-shaped value under an unrelated variable of an unrelated server.
          search: { command: 'npx', args: ['-y', '@example/search-mcp'], env: { SEARCH_API_KEY: ghOther } },
        },
      },
      null,
      2,
    ) + '\n',
  );
  // VS Code: the remote GitHub MCP server (Authorization header), with comments.
  await h.write(
    '.config/Code/User/mcp.json',
    `{
  // GitHub's remote server
  "servers": {
    "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer ${gh}" } },
  },
}
`,
  );
  // Codex: GITHUB_TOKEN counts inside a GitHub MCP server entry (server-github)...
  await h.write(
    '.codex/config.toml',
    `[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env = { GITHUB_TOKEN = "${gh}" }

# ...and not in an unrelated one.
[mcp_servers.other]
command = "other-mcp"
env = { GITHUB_TOKEN = "${ghOther}" }
`,
  );
  // A shell start-up file exporting the variable.
  await h.write('.bashrc', `export PATH=$HOME/bin:$PATH\nexport GITHUB_PERSONAL_ACCESS_TOKEN=${gh}\n`);
}

function fps(list: { bearerFingerprint?: string }[]): Set<string> {
  return new Set(list.flatMap((r) => (r.bearerFingerprint ? [r.bearerFingerprint] : [])));
}

describe('GitHub personal access tokens', () => {
  let h: TempHome;
  let gh: string;
  let ghOther: string;
  let crtx: string;
  const githubTokens: string[] = [];
  const certorixTokens: string[] = [];
  beforeAll(async () => {
    h = await makeHome(certorix.url);
    h.env.GITHUB_API_URL = github.url;
    gh = github.addToken({ login: 'octocat', expiresAt: inDays(10), scopes: ['repo', 'admin:org', 'delete_repo'] });
    ghOther = github.addToken({ login: 'someone-else' });
    crtx = certorix.addToken({ email: 'dev@example.com', role: 'editor', ageDays: 20 });
    githubTokens.push(gh, ghOther);
    certorixTokens.push(crtx);
    await writeConfigs(h, gh, crtx, ghOther);
  });
  afterAll(() => h.cleanup());

  it('scan attributes by entry: the GitHub forms are one GitHub token with its expiry; the traps are nobody\'s', async () => {
    const r = await runCli(['scan', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as StatusDoc;
    const t = doc.tokens.find((x) => x.fingerprint === fingerprint(gh));
    expect(t).toMatchObject({ provider: 'github', ageDays: null, state: 'due', role: 'repo, admin:org, delete_repo' });
    expect(Date.parse(t?.expiresAt ?? '')).toBeGreaterThan(Date.now() + 9 * DAY);
    expect(t?.locations.map((l) => l.client).sort()).toEqual(['claude-desktop', 'codex', 'shell', 'vscode']);
    expect(doc.tokens.find((x) => x.fingerprint === fingerprint(crtx))).toMatchObject({ provider: 'certorix', expiresAt: null });
    expect(doc.tokens.map((x) => x.fingerprint)).not.toContain(fingerprint(ghOther));
    // GitHub was asked with GET /user, Bearer, a User-Agent naming MCP.
    const seen = github.requests.filter((q) => q.bearerFingerprint === fingerprint(gh));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((q) => q.method === 'GET' && q.path === '/user' && q.scheme === 'Bearer' && /MCP/.test(q.userAgent ?? ''))).toBe(true);
  });

  it('status shows the provider and the expiry, and exits 1 for the token expiring within warnBeforeExpiryDays', async () => {
    const r = await runCli(['status', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as StatusDoc;
    expect(doc.tokens.find((x) => x.provider === 'github')).toMatchObject({ state: 'due', ageDays: null });
    const table = await runCli(['status'], { env: h.env });
    expect(table.stdout).toMatch(/PROVIDER/);
    expect(table.stdout).toMatch(new RegExp(`${fingerprint(gh)}\\s+github`));
    // Unknown age is GitHub's nature, not something to ask about again.
    expect(table.stdout).not.toContain('unknown age');
  });

  it('doctor: a classic token with broad scopes (as X-OAuth-Scopes said) where a fine-grained one would do', async () => {
    const r = await runCli(['doctor', '--offline', '--json'], { env: h.env, timeoutMs: 30_000 });
    const doc = JSON.parse(r.stdout) as { findings: Array<{ id: string; fingerprint?: string; message: string; fix: string }> };
    const f = doc.findings.find((x) => x.id === 'github-classic-broad');
    expect(f?.fingerprint).toBe(fingerprint(gh));
    expect(f?.message).toContain('admin:org');
    expect(f?.fix).toContain('fine-grained');
    expect(f?.fix).toContain('https://github.com/settings/tokens');
    // Certorix's role finding is unchanged beside it.
    expect(doc.findings.some((x) => x.id === 'token-role' && x.fingerprint === fingerprint(crtx))).toBe(true);
  });

  it('rotate --fingerprint of the GitHub token exits 2 naming the token page and set-token, and calls nothing', async () => {
    const before = github.requests.length + certorix.requests.length;
    const r = await runCli(['rotate', '--fingerprint', fingerprint(gh)], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('https://github.com/settings/tokens');
    expect(r.stderr).toContain(`set-token --fingerprint ${fingerprint(gh)}`);
    expect(github.requests.length + certorix.requests.length).toBe(before);
    expect(await h.read('.bashrc')).toContain(gh);
  });

  it('rotate without --fingerprint rotates Certorix\'s, lists GitHub\'s with what to do, and exits 0', async () => {
    const r = await runCli(['rotate', '--json'], { env: h.env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ fingerprint: string; status: string; newFingerprint: string }>; manual: Array<{ fingerprint: string; provider: string; page: string; command: string }> };
    expect(doc.rotations.map((x) => [x.fingerprint, x.status])).toEqual([[fingerprint(crtx), 'rotated']]);
    expect(doc.manual).toEqual([{ fingerprint: fingerprint(gh), provider: 'github', page: 'https://github.com/settings/tokens', command: `mcp-token-rotator set-token --fingerprint ${fingerprint(gh)}` }]);
    expect(r.stderr).toContain('https://github.com/settings/tokens');
    const fresh = certorix.liveTokens('dev@example.com')[0]?.token as string;
    certorixTokens.push(fresh);
    expect(fingerprint(fresh)).toBe(doc.rotations[0]?.newFingerprint);
    expect(await h.read('.config/Claude/claude_desktop_config.json')).toContain(gh);
  });

  it('set-token checks the new token with GitHub only and puts it in every GitHub form, leaving the others', async () => {
    const next = github.addToken({ login: 'octocat', expiresAt: inDays(90) });
    githubTokens.push(next);
    const certorixBefore = certorix.requests.length;
    const r = await runCli(['set-token', '--json'], { env: h.env, input: `${next}\n` });
    expect(r.code, r.stderr).toBe(0);
    for (const rel of ['.config/Claude/claude_desktop_config.json', '.config/Code/User/mcp.json', '.codex/config.toml', '.bashrc']) {
      const text = await h.read(rel);
      expect(text, rel).toContain(next);
      expect(text, rel).not.toContain(gh);
    }
    expect(await h.read('.config/Code/User/mcp.json')).toContain(`"Authorization": "Bearer ${next}"`);
    expect(await h.read('.config/Code/User/mcp.json')).toContain('// GitHub\'s remote server');
    // The traps and the Certorix token are untouched.
    expect(await h.read('.codex/config.toml')).toContain(`GITHUB_TOKEN = "${ghOther}"`);
    expect(await h.read('.config/Claude/claude_desktop_config.json')).toContain(ghOther);
    expect(certorix.requests.length).toBe(certorixBefore);
    expect(github.requests.some((q) => q.bearerFingerprint === fingerprint(next) && q.path === '/user')).toBe(true);
    const st = JSON.parse((await runCli(['status', '--json'], { env: h.env })).stdout) as StatusDoc;
    expect(st.tokens.find((x) => x.fingerprint === fingerprint(next))).toMatchObject({ provider: 'github', state: 'ok', ageDays: null });
    gh = next;
  });

  it('a GitHub token piped for a Certorix token is sent nowhere', async () => {
    const stray = github.addToken({ login: 'octocat' });
    githubTokens.push(stray);
    const crtxNow = certorixTokens[certorixTokens.length - 1] as string;
    const before = { c: certorix.requests.length, g: github.requests.length };
    const r = await runCli(['set-token', '--fingerprint', fingerprint(crtxNow)], { env: h.env, input: `${stray}\n` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GitHub token/);
    expect(certorix.requests.length).toBe(before.c);
    expect(github.requests.length).toBe(before.g);
  });

  it('revoke-now regenerates Certorix\'s and exits 2 naming the GitHub token that still works, with its page', async () => {
    const r = await runCli(['revoke-now', '--yes', '--json'], { env: h.env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`token ${fingerprint(gh)} still works`);
    expect(r.stderr).toContain('https://github.com/settings/tokens');
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ status: string }> };
    expect(doc.rotations.map((x) => x.status)).toEqual(['rotated']);
    certorixTokens.push(certorix.liveTokens('dev@example.com')[0]?.token as string);
  });

  it('an expired or revoked GitHub token shows invalid with its page', async () => {
    github.revoke(gh);
    const r = await runCli(['scan'], { env: h.env });
    expect(r.stderr).toContain(`token ${fingerprint(gh)} is invalid`);
    const st = await runCli(['status'], { env: h.env });
    expect(st.code).toBe(2);
    expect(st.stdout).toContain(`Token ${fingerprint(gh)} (github) is invalid: make a new one at https://github.com/settings/tokens`);
  });

  it('no token ever reached another provider\'s API', () => {
    const gFps = new Set(githubTokens.map(fingerprint));
    const cFps = new Set(certorixTokens.map(fingerprint));
    for (const fp of fps(github.requests)) expect(gFps.has(fp), `GitHub saw ${fp}`).toBe(true);
    for (const fp of fps(certorix.requests)) expect(cFps.has(fp), `Certorix saw ${fp}`).toBe(true);
    // The unrelated GitHub-shaped value was never sent anywhere.
    expect(fps(github.requests).has(fingerprint(ghOther))).toBe(false);
    expect(github.requests.length).toBeGreaterThan(0);
  });
});

describe('GitHub in broker mode', () => {
  let h: TempHome;
  afterAll(() => h?.cleanup());

  it('broker enable hands the token over in the entry\'s own variable, and set-token reaches the running server', async () => {
    h = await makeHome(certorix.url);
    h.env.GITHUB_API_URL = github.url;
    const first = github.addToken({ login: 'octocat' });
    // A stdio GitHub server stand-in (the contract's "server-github" marks it) reading GITHUB_PERSONAL_ACCESS_TOKEN.
    const entry = { command: process.execPath, args: [LOCAL_SERVER, '--name', 'server-github'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: first, MCP_LOCAL_SERVER_TOKEN_VAR: 'GITHUB_PERSONAL_ACCESS_TOKEN' } };
    await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { github: entry } }, null, 2) + '\n');
    const en = await runCli(['broker', 'enable', '--json'], { env: h.env, timeoutMs: 30_000 });
    expect(en.code, en.stderr).toBe(0);
    const converted = (JSON.parse(await h.read('.cursor/mcp.json')) as { mcpServers: { github: StdioEntry } }).mcpServers.github;
    expect(JSON.stringify(converted)).not.toContain(first);
    const dash = converted.args.indexOf('--');
    expect(converted.args.slice(dash - 2, dash)).toEqual(['--env', 'GITHUB_PERSONAL_ACCESS_TOKEN']);
    expect(converted.args[2]).toMatch(/^github-[0-9a-f]{8}$/);

    const c = await startClient({ ...converted, env: { ...converted.env, HOME: h.home, PATH: h.env.PATH as string } });
    try {
      const read = async () => ((await c.client.readResource({ uri: 'certorix://account' })).contents[0] as { text: string }).text;
      expect(await read()).toBe(fingerprint(first));
      const next = github.addToken({ login: 'octocat' });
      const st = await runCli(['set-token'], { env: h.env, input: `${next}\n`, timeoutMs: 30_000 });
      expect(st.code, st.stderr).toBe(0);
      // The wrapper restarted the server with the new token, in the same variable; the client never noticed.
      await expect.poll(read, { timeout: 10_000, interval: 200 }).toBe(fingerprint(next));
      expect(c.closed()).toBe(false);
    } finally {
      await c.client.close();
    }
  });
});

describe('GitHub in the daemon', () => {
  let h: TempHome;
  afterAll(() => h?.cleanup());

  it('warns before expiry naming GitHub, the page and set-token, and a revoked one as invalid', async () => {
    const { spawnDaemon } = await import('../helpers/daemon.js');
    h = await makeHome(certorix.url);
    h.env.GITHUB_API_URL = github.url;
    const tok = github.addToken({ login: 'octocat', expiresAt: inDays(5) });
    await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { github: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: tok } } } }, null, 2) + '\n');
    await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, requestTimeoutMs: 2000, notify: false });
    const fp = fingerprint(tok);
    const d = spawnDaemon(h.env);
    try {
      const warn = await d.waitFor((l) => l.level === 40 && l.fingerprint === fp && l.reason !== undefined, 15_000);
      expect(warn).toMatchObject({ provider: 'github', expiresInDays: 4 });
      expect(String(warn.msg)).toMatch(/^GitHub token [0-9a-f]{12} expires in 4 day\(s\)/);
      expect(String(warn.msg)).toContain('https://github.com/settings/tokens');
      expect(String(warn.msg)).toContain(`set-token --fingerprint ${fp}`);
      github.revoke(tok);
      d.child.kill('SIGHUP');
      const bad = await d.waitFor((l) => l.level === 40 && l.fingerprint === fp && String(l.msg).includes('invalid'), 15_000);
      expect(bad).toMatchObject({ provider: 'github' });
      expect(String(bad.msg)).toContain('https://github.com/settings/tokens');
    } finally {
      expect((await d.stop()).code).toBe(0);
    }
  });
});
