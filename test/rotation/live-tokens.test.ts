import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';

/** Issue 9 §6: set-token and revoke-now with tokens that are still alive. */

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome;
let seq = 0;
afterEach(() => h.cleanup());

const cursor = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';
const gemini = (t: string) => JSON.stringify({ mcpServers: { c: { command: 'x', env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';

interface Status {
  tokens: Array<{ fingerprint: string; state: string }>;
  replacedStillAlive: Array<{ fingerprint: string; replacedBy: string | null; aliveAt: string }>;
}
const status = async (): Promise<Status> => JSON.parse((await runCli(['status', '--json'], { env: h.env })).stdout) as Status;
const history = async () => (JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string; fingerprint: string; newFingerprint: string | null }> }).events;

/** One account with a token in two configs, recorded by an online scan. */
async function setup(): Promise<{ email: string; old: string }> {
  h = await makeHome(api.url);
  const email = `live${++seq}@example.com`;
  const old = api.addToken({ email, role: 'editor', ageDays: 30 });
  await h.write('.cursor/mcp.json', cursor(old));
  await h.write('.gemini/settings.json', gemini(old));
  expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
  return { email, old };
}

describe('set-token with an old token that still works', () => {
  it('adopts the new one, names the old one as still alive, keeps it out of every state file, and lists it in status and history', async () => {
    const { email, old } = await setup();
    // A second token made in the web UI without regenerating: the first one keeps working.
    const fresh = api.addToken({ email, role: 'editor' });
    const r = await runCli(['set-token', '--json'], { env: h.env, input: fresh + '\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(api.isLive(old)).toBe(true);
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(fresh));
    expect(await h.read('.gemini/settings.json')).toBe(gemini(fresh));
    expect(r.stderr).toContain(`note: token ${fingerprint(old)}`);
    expect(r.stderr).toMatch(/still worked .*revoke it in the Certorix web UI/);
    expect((JSON.parse(r.stdout) as { notices: string[] }).notices[0]).toContain(fingerprint(old));

    // Backups were kept, and the old token is blanked in them like any live token.
    const backups = readdirSync(h.path('.local/state/mcp-token-rotator/backups'));
    expect(backups.length).toBe(2);
    const files = await h.stateFiles();
    expect(files.some((f) => f.bytes.includes('REDACTED-BY-MCP-TOKEN-ROTATOR'))).toBe(true);
    expect(findLeaks([old, fresh], files.map((f) => f.bytes))).toEqual([]);
    expect(findLeaks([old, fresh], [r.stdout, r.stderr])).toEqual([]);

    const st = await status();
    expect(st.tokens.map((t) => t.fingerprint)).toEqual([fingerprint(fresh)]);
    expect(st.replacedStillAlive).toEqual([expect.objectContaining({ fingerprint: fingerprint(old), replacedBy: fingerprint(fresh) })]);
    const table = await runCli(['status'], { env: h.env });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`Token ${fingerprint(old)} was replaced by ${fingerprint(fresh)} but still worked`);
    const events = await history();
    expect(events.slice(0, 2).map((e) => e.type)).toEqual(['replaced-still-alive', 'adopted']);
    expect(events[0]).toMatchObject({ fingerprint: fingerprint(old), newFingerprint: fingerprint(fresh) });

    // Revoked in the web UI: the user says so, and it is no longer listed.
    api.revoke(old);
    const forget = await runCli(['status', '--forget', fingerprint(old)], { env: h.env });
    expect(forget.code, forget.stderr).toBe(0);
    expect(forget.stdout).not.toContain('still worked');
    expect((await status()).replacedStillAlive).toEqual([]);
    expect((await history())[0]).toMatchObject({ type: 'still-alive-forgotten', fingerprint: fingerprint(old) });
    expect((await runCli(['status', '--forget', fingerprint(old)], { env: h.env })).code).toBe(2);
  });

  it('says nothing of the kind when the old token is dead (the usual web UI regenerate)', async () => {
    const { email, old } = await setup();
    const fresh = api.addToken({ email, role: 'editor' });
    api.revoke(old);
    const r = await runCli(['set-token'], { env: h.env, input: fresh });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('still worked');
    expect((await status()).replacedStillAlive).toEqual([]);
  });

  it('refuses to swap accounts silently: exit 2 without a terminal, naming --fingerprint; done with it', async () => {
    const { old } = await setup();
    api.revoke(old);
    const other = api.addToken({ email: `someone-else${seq}@example.com`, role: 'editor' });
    const r = await runCli(['set-token'], { env: h.env, input: other });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('another account');
    expect(r.stderr).toContain(`--fingerprint ${fingerprint(old)}`);
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(old));
    const ok = await runCli(['set-token', '--fingerprint', fingerprint(old)], { env: h.env, input: other });
    expect(ok.code, ok.stderr).toBe(0);
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(other));
  });
});

describe('revoke-now with retired tokens that still work', () => {
  it('regenerates a retired token that still works and is found in a config', async () => {
    const { email, old } = await setup();
    const fresh = api.addToken({ email, role: 'editor' });
    expect((await runCli(['set-token'], { env: h.env, input: fresh })).code).toBe(0);
    // A stale copy of the old (retired, still alive) token turns up in a project file.
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, extraConfigs: ['~/code/*/.mcp.json'] });
    await h.write('code/app/.mcp.json', cursor(old));
    const r = await runCli(['revoke-now', '--yes', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`token ${fingerprint(old)} was retired but the API still accepts it`);
    expect(api.isLive(old)).toBe(false);
    expect(api.isLive(fresh)).toBe(false);
    const live = api.liveTokens(email).map((t) => t.token);
    expect(live).toHaveLength(2);
    const project = JSON.parse(await h.read('code/app/.mcp.json')) as { mcpServers: { certorix: { env: { CERTORIX_API_TOKEN: string } } } };
    expect(live).toContain(project.mcpServers.certorix.env.CERTORIX_API_TOKEN);
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ fingerprint: string; status: string }> };
    expect(doc.rotations.map((x) => x.fingerprint).sort()).toEqual([fingerprint(old), fingerprint(fresh)].sort());
    expect(doc.rotations.every((x) => x.status === 'rotated')).toBe(true);
    // Dead now: no longer listed as still alive.
    expect((await status()).replacedStillAlive).toEqual([]);
    // The replaced tokens are dead now and may sit in backups; the live ones may not.
    const sf = await h.stateFiles();
    expect(sf.filter((f) => live.some((t) => f.bytes.includes(t))).map((f) => f.file), JSON.stringify({ old: old.slice(0, 6), fresh: fresh.slice(0, 6), live: live.map((t) => t.slice(0, 6)) })).toEqual([]);
  });

  it('names a replaced token that still worked and that no config holds any more', async () => {
    const { email, old } = await setup();
    const fresh = api.addToken({ email, role: 'editor' });
    expect((await runCli(['set-token'], { env: h.env, input: fresh })).code).toBe(0);
    const r = await runCli(['revoke-now', '--yes'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(api.isLive(fresh)).toBe(false);
    expect(r.stderr).toContain(`note: token ${fingerprint(old)} (replaced by ${fingerprint(fresh)}) still worked`);
    expect(r.stderr).toContain('revoke it in the Certorix web UI');
  });
});
