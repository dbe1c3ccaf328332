import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod } from 'node:fs/promises';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { FIXTURES, GITHUB_TOKEN } from '../helpers/fixtures.js';
import { fingerprint } from '../../src/fingerprint.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

interface StatusDoc {
  tokens: Array<{ fingerprint: string; provider: string; role: string | null; createdAt: string | null; firstSeenAt: string; ageDays: number; state: string; locations: Array<{ path: string; client: string }> }>;
}

describe('scan and status against every client format', () => {
  let h: TempHome;
  let tokA: string;
  let tokB: string;
  beforeAll(async () => {
    h = await makeHome(api.url);
    tokA = api.addToken({ email: 'alice@example.com', role: 'editor', ageDays: 95 });
    tokB = api.addToken({ email: 'bob@example.com', role: 'admin', ageDays: 10 });
    for (const f of FIXTURES) await h.write(f.rel, f.content(f.client === 'zed' || f.client === 'goose' ? tokB : tokA));
    // Dotfiles repo: the real file elsewhere, a symlink where the client looks.
    await h.write('dotfiles/zshrc', `export PATH=$HOME/bin:$PATH\nexport CERTORIX_API_TOKEN=${tokA}`);
    await h.link('.zshrc', h.path('dotfiles/zshrc'));
    // A broken file that has nothing to do with us must not block the report.
    await h.write('proj/.mcp.json', '{ "mcpServers": { oops');
    await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, extraConfigs: ['~/proj/.mcp.json'] });
  });
  afterAll(() => h.cleanup());

  it('scan finds every client, both tokens, and reports the broken file without failing the others', async () => {
    const r = await runCli(['scan', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(2); // the broken project file
    const doc = JSON.parse(r.stdout) as { configs: Array<{ path: string; client: string; status: string; tokens: string[] }>; tokens: StatusDoc['tokens'] };
    const ok = doc.configs.filter((c) => c.status === 'ok');
    const clients = new Set(ok.filter((c) => c.tokens.length).map((c) => c.client));
    for (const f of FIXTURES) expect(clients, f.client).toContain(f.client);
    const broken = doc.configs.find((c) => c.status === 'error');
    expect(broken?.path).toBe(h.path('proj/.mcp.json'));
    expect(r.stderr).toContain(h.path('proj/.mcp.json'));
    expect(doc.tokens.map((t) => t.fingerprint).sort()).toEqual([fingerprint(tokA), fingerprint(tokB)].sort());
    // The GitHub token beside ours is never tracked.
    expect(doc.tokens.map((t) => t.fingerprint)).not.toContain(fingerprint(GITHUB_TOKEN));
    const a = doc.tokens.find((t) => t.fingerprint === fingerprint(tokA))!;
    expect(a.role).toBe('editor');
    expect(a.locations.map((l) => l.path)).toContain(h.path('.zshrc'));
    expect(findLeaks([tokA, tokB, GITHUB_TOKEN], [r.stdout, r.stderr])).toEqual([]);
  });

  it('status reports ages from created_at, due at 95 days, and exits 1', async () => {
    const r = await runCli(['status', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as StatusDoc;
    const a = doc.tokens.find((t) => t.fingerprint === fingerprint(tokA))!;
    const b = doc.tokens.find((t) => t.fingerprint === fingerprint(tokB))!;
    expect(a).toMatchObject({ provider: 'certorix', role: 'editor', ageDays: 95, state: 'due' });
    expect(b).toMatchObject({ provider: 'certorix', role: 'admin', ageDays: 10, state: 'ok' });
    expect(Object.keys(a).sort()).toEqual(['ageDays', 'createdAt', 'expiresAt', 'firstSeenAt', 'fingerprint', 'locations', 'provider', 'role', 'state'].sort());
    expect(b.locations.map((l) => l.client).sort()).toEqual(['goose', 'zed']);
    expect(findLeaks([tokA, tokB], [r.stdout, r.stderr])).toEqual([]);
  });

  it('status works offline from what is recorded', async () => {
    const r = await runCli(['status', '--json'], { env: { ...h.env, CERTORIX_API_URL: 'http://127.0.0.1:9' } });
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as StatusDoc).tokens).toHaveLength(2);
  });

  it('human status is a readable table', async () => {
    const r = await runCli(['status'], { env: h.env });
    expect(r.stdout).toMatch(/FINGERPRINT\s+ROLE\s+AGE\s+STATE\s+WHERE/);
    expect(r.stdout).toContain(fingerprint(tokA));
    expect(r.stdout).toContain('95d');
    expect(r.stdout).toContain('~/.claude.json');
  });

  it('an invalid (revoked) token makes status exit 2', async () => {
    const h2 = await makeHome(api.url);
    const t = api.addToken({ email: 'carol@example.com' });
    await h2.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: t + 'x' } } } }));
    const scan = await runCli(['scan', '--json'], { env: h2.env });
    expect(scan.code).toBe(0);
    const r = await runCli(['status', '--json'], { env: h2.env });
    expect(r.code).toBe(2);
    expect((JSON.parse(r.stdout) as StatusDoc).tokens[0]?.state).toBe('invalid');
    await h2.cleanup();
  });

  it('no token value is ever at rest in the state directory, and its modes are 0700/0600', async () => {
    const files = await h.stateFiles();
    expect(files.length).toBeGreaterThan(0);
    expect(findLeaks([tokA, tokB, GITHUB_TOKEN], files.map((f) => f.bytes))).toEqual([]);
    const { statSync } = await import('node:fs');
    expect(statSync(h.stateDir).mode & 0o777).toBe(0o700);
    for (const f of files) expect(statSync(f.file).mode & 0o777, f.file).toBe(0o600);
    void chmod;
  });
});

describe('settings errors', () => {
  it.each([
    [{ warnAfterDays: 'ninety' }, 'warnAfterDays'],
    [{ warnAfterDay: 90 }, 'warnAfterDay'],
    [{ apiUrl: 'http://api.certorix.com' }, 'apiUrl'],
    [{ extraConfigs: ['~/code/[*/.mcp.json'] }, 'extraConfigs.0'],
    [{ autoRotate: { cron: 'every monday' } }, 'autoRotate.cron'],
  ])('%j is reported with the file and field, and nothing runs', async (settings, field) => {
    const h = await makeHome(api.url);
    await h.settings(settings as Record<string, unknown>);
    const r = await runCli(['status', '--json'], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(h.path('.config/mcp-token-rotator/config.json'));
    expect(r.stderr).toContain(field);
    const { existsSync } = await import('node:fs');
    expect(existsSync(h.stateDir)).toBe(false);
    await h.cleanup();
  });

  it('a file that is not JSON is reported with its path', async () => {
    const h = await makeHome(api.url);
    await h.write('.config/mcp-token-rotator/config.json', '{ nope');
    const r = await runCli(['scan'], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config\.json[\s\S]*not valid JSON/);
    await h.cleanup();
  });

  it('--config points at another file', async () => {
    const h = await makeHome(api.url);
    await h.write('elsewhere.json', JSON.stringify({ warnAfterDays: -1 }));
    const r = await runCli(['status', '--config', h.path('elsewhere.json')], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(h.path('elsewhere.json'));
    expect(r.stderr).toContain('warnAfterDays');
    await h.cleanup();
  });
});

describe('usage', () => {
  it('unknown command and unknown flag exit 64', async () => {
    const h = await makeHome(api.url);
    expect((await runCli(['frobnicate'], { env: h.env })).code).toBe(64);
    const r = await runCli(['status', '--bogus'], { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--bogus');
    expect((await runCli(['status', '--help'], { env: h.env })).code).toBe(0);
    await h.cleanup();
  });
});
