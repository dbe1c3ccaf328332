import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { LOCAL_SERVER, startClient, type RunningClient, type StdioEntry } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';
import { exposuresOf, checkExposure } from '../../src/doctor/exposure.js';

// Issue 15, item 11: enable must not hide an exposure; --rotate ends it. Item 12: enable says
// why the keychain is not used.
let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

const PROJECT = 'code/app/.mcp.json';
const FAST = { retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000 };
interface Finding {
  id: string;
  severity: string;
  file?: string;
  fingerprint?: string;
  message: string;
  fix: string;
}

let h: TempHome | undefined;
const clients: RunningClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close().catch(() => undefined);
  await h?.cleanup();
  h = undefined;
});

/** A project .mcp.json committed to git, 0644, holding a live token; a private Claude Desktop config. */
async function exposedHome(store: 'file' | 'auto' = 'file'): Promise<{ h: TempHome; tok: string; email: string }> {
  const email = `exposed-${Math.random().toString(36).slice(2)}@example.com`;
  const home = await makeHome(api.url);
  await home.settings({ ...FAST, broker: { store }, extraConfigs: ['~/code/*/.mcp.json'] });
  const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
  const entry = JSON.stringify({ mcpServers: { certorix: { command: process.execPath, args: [LOCAL_SERVER], env: { CERTORIX_API_TOKEN: tok, CERTORIX_API_URL: api.url } } } }, null, 2) + '\n';
  await home.write(PROJECT, entry, 0o644);
  execFileSync('git', ['init', '-q', home.path('code/app')]);
  execFileSync('git', ['-C', home.path('code/app'), 'add', '.mcp.json']);
  await home.write('.config/Claude/claude_desktop_config.json', entry, 0o600);
  return { h: home, tok, email };
}

async function doctor(home: TempHome): Promise<{ code: number | null; findings: Finding[] }> {
  const r = await runCli(['doctor', '--offline', '--json'], { env: home.env });
  return { code: r.code, findings: (JSON.parse(r.stdout) as { findings: Finding[] }).findings };
}

describe('exposure memory (pure)', () => {
  it('a tracked file exposes to git, a 0644 one to other users; a private untracked one to nobody', () => {
    expect(exposuresOf({ mode: 0o100644, git: { state: 'tracked', root: '/r' }, fingerprints: ['aaaaaaaaaaaa'] }).map((e) => e.kind)).toEqual(['git', 'readable']);
    expect(exposuresOf({ mode: 0o100600, git: { state: 'untracked', root: '/r' }, fingerprints: ['aaaaaaaaaaaa'] })).toEqual([]);
    expect(exposuresOf({ mode: null, git: { state: 'none' }, fingerprints: ['aaaaaaaaaaaa'] })).toEqual([]);
  });
  it('reported only while the token is in use and the file no longer holds it', () => {
    const row = { fingerprint: 'aaaaaaaaaaaa', path: '/r/.mcp.json', kind: 'git' as const, detail: '/r', firstSeenAt: '2026-12-01T00:00:00Z', lastSeenAt: '2026-12-01T00:00:00Z' };
    expect(checkExposure(row, { retired: false, stillInFile: false })).toMatchObject({ id: 'token-exposed', severity: 'danger', fingerprint: 'aaaaaaaaaaaa' });
    expect(checkExposure(row, { retired: true, stillInFile: false })).toBeNull();
    expect(checkExposure(row, { retired: false, stillInFile: true })).toBeNull();
  });
});

describe('broker enable keeps the exposure in view', () => {
  it('plain enable: doctor still reports the token committed to git and readable by others, until it is rotated; enable says the old copies still work', async () => {
    const w = await exposedHome();
    h = w.h;
    const fp = fingerprint(w.tok);
    const before = await doctor(h);
    expect(before.findings.filter((f) => f.file === h!.path(PROJECT)).map((f) => f.id)).toEqual(expect.arrayContaining(['config-in-git', 'config-permissions']));

    const en = await runCli(['broker', 'enable'], { env: h.env });
    expect(en.code, en.stderr).toBe(0);
    expect(findLeaks([w.tok], [await h.read(PROJECT)])).toEqual([]);
    expect(en.stdout).toContain(`The old plaintext copies of token ${fp} still work`);
    expect(en.stdout).toContain('broker enable --rotate');
    // Why the keychain is not used, and how to get it.
    expect(en.stdout).toMatch(/The OS keychain is not used, because the settings choose it/);

    const after = await doctor(h);
    const exposed = after.findings.filter((f) => f.id === 'token-exposed' && f.fingerprint === fp && f.file === h!.path(PROJECT));
    expect(exposed.map((f) => f.severity).sort()).toEqual(['danger', 'warn']);
    expect(exposed.find((f) => f.severity === 'danger')!.message).toMatch(/git history/);
    expect(after.code).toBe(2);
    expect(findLeaks([w.tok], [JSON.stringify(after.findings)])).toEqual([]);

    const rot = await runCli(['rotate', '--json'], { env: h.env });
    expect(rot.code, rot.stderr).toBe(0);
    expect((await doctor(h)).findings.filter((f) => f.id === 'token-exposed')).toEqual([]);
  }, 60_000);

  it('enable --rotate: converts, then rotates the converted token; the plaintext copy is dead, a client from the converted entry works, doctor reports no exposure', async () => {
    const w = await exposedHome();
    h = w.h;
    const r = await runCli(['broker', 'enable', '--rotate', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { converted: Array<{ path: string; fingerprint: string }>; rotations: Array<{ status: string; fingerprint: string; newFingerprint: string }> };
    expect(doc.converted.map((c) => c.path).sort()).toEqual([h.path('.config/Claude/claude_desktop_config.json'), h.path(PROJECT)].sort());
    expect(doc.rotations).toEqual([expect.objectContaining({ status: 'rotated', fingerprint: fingerprint(w.tok) })]);
    expect(r.stderr).not.toContain('still work');
    // The copy in the git index (and any other) is dead; the broker serves the new token.
    const live = api.liveTokens(w.email);
    expect(live.map((t) => t.token)).not.toContain(w.tok);
    expect(live).toHaveLength(1);
    const entry = (JSON.parse(await h.read('.config/Claude/claude_desktop_config.json')) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix;
    const c = await startClient(entry);
    clients.push(c);
    const res = (await c.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }>; isError?: boolean };
    expect(res.isError).toBeFalsy();
    expect(res.content[0]!.text).toBe(`${w.email} ${fingerprint(live[0]!.token)}`);
    expect((await doctor(h)).findings.filter((f) => f.id === 'token-exposed')).toEqual([]);
  }, 60_000);

  it('with "auto" and no session bus, enable says the keychain is unreachable and how to get it', async () => {
    const w = await exposedHome('auto');
    h = w.h;
    // A minimal environment: no DBUS_SESSION_BUS_ADDRESS, no XDG_RUNTIME_DIR.
    const en = await runCli(['broker', 'enable', '--dry-run'], { env: { HOME: h.home, PATH: h.env.PATH ?? '', CERTORIX_API_URL: api.url } });
    expect(en.code, en.stderr).toBe(0);
    expect(en.stdout).toMatch(/The OS keychain is not used, because (there is no D-Bus session bus|no Secret Service answers)/);
    expect(en.stdout).toMatch(/-> .*broker disable/);
  }, 60_000);
});
