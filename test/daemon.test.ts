import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { startFakeCertorix, type FakeCertorix } from './fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from './helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from './helpers/daemon.js';
import { fingerprint } from '../src/fingerprint.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome;
let d: SpawnedDaemon | undefined;
let seq = 0;
afterEach(async () => {
  await d?.stop('SIGKILL');
  d = undefined;
  await h?.cleanup();
});

const cursorConfig = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';

describe('daemon', () => {
  it('warns about a 93-day-old token at start, serves revoke-now through its socket, exits 0 on SIGTERM', async () => {
    h = await makeHome(api.url);
    const email = `d${++seq}@example.com`;
    const tok = api.addToken({ email, ageDays: 93 });
    await h.write('.cursor/mcp.json', cursorConfig(tok));
    await h.write('.gemini/settings.json', JSON.stringify({ mcpServers: { c: { command: 'x', env: { CERTORIX_API_TOKEN: tok } } } }));
    d = spawnDaemon({ ...h.env, MCP_TOKEN_ROTATOR_NOTIFY_FILE: h.path('notes.jsonl') });
    const warn = await d.waitFor((l) => l.level === 40 && l.fingerprint === fingerprint(tok));
    expect(warn.ageDays).toBe(93);
    expect(String(warn.msg)).toContain(`mcp-token-rotator rotate --fingerprint ${fingerprint(tok)}`);
    // The notification follows the warning line (a separate async write): wait for it, bounded.
    let notes = '';
    for (let i = 0; i < 100 && !notes.includes(fingerprint(tok)); i++) {
      notes = await h.read('notes.jsonl').catch(() => '');
      if (!notes.includes(fingerprint(tok))) await new Promise((r) => setTimeout(r, 100));
    }
    expect(notes).toContain(fingerprint(tok));
    expect(statSync(h.path('.local/state/mcp-token-rotator/control.sock')).mode & 0o777).toBe(0o600);

    // A second daemon for the same state directory refuses to start.
    const second = await runCli(['daemon'], { env: h.env, timeoutMs: 10_000 });
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/already running/);

    const r = await runCli(['revoke-now', '--yes', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const fresh = api.liveTokens(email)[0]!.token;
    expect(api.isLive(tok)).toBe(false);
    expect(await h.read('.cursor/mcp.json')).toBe(cursorConfig(fresh));
    // Carried out by the daemon: its log has the rotation with both fingerprints.
    const rotated = await d.waitFor((l) => l.fingerprint === fingerprint(tok) && l.newFingerprint === fingerprint(fresh) && String(l.msg).startsWith('rotated'));
    expect(rotated.pid).toBe(d.child.pid);
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ source: string }> };
    expect(hist.events[0]!.source).toBe('revoke-now');

    const stopped = await d.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(5000);
    expect(findLeaks([tok, fresh], [d.raw(), r.stdout, r.stderr])).toEqual([]);
  });

  it('picks up a config created while it runs, and heals a retired token that reappears', async () => {
    h = await makeHome(api.url);
    const email = `d${++seq}@example.com`;
    const tok = api.addToken({ email, ageDays: 5 });
    // Private (0600): heal writes the current token only into files others cannot read.
    await h.write('.cursor/mcp.json', cursorConfig(tok), 0o600);
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started');

    // A new client config appears (the user installs Windsurf and pastes the token).
    const tok2 = api.addToken({ email: `other${seq}@example.com`, ageDays: 1 });
    await h.write('.codeium/windsurf/mcp_config.json', JSON.stringify({ mcpServers: { c: { serverUrl: 'https://mcp.certorix.com/mcp', headers: { Authorization: `Bearer ${tok2}` } } } }));
    await d.waitFor((l) => Array.isArray(l.fingerprints) && (l.fingerprints as string[]).includes(fingerprint(tok2)), 8000);
    const st = JSON.parse((await runCli(['status', '--json'], { env: h.env })).stdout) as { tokens: Array<{ fingerprint: string; locations: Array<{ client: string }> }> };
    expect(st.tokens.find((t) => t.fingerprint === fingerprint(tok2))?.locations[0]?.client).toBe('windsurf');

    // Rotate through the daemon, then a client restores its old copy: the daemon heals it.
    const r = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const fresh = api.liveTokens(email)[0]!.token;
    await h.write('.cursor/mcp.json', cursorConfig(tok));
    await d.waitFor((l) => String(l.msg).startsWith('healed') && l.fingerprint === fingerprint(tok), 8000);
    expect(await h.read('.cursor/mcp.json')).toBe(cursorConfig(fresh));
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string; source: string; fingerprint: string; newFingerprint: string }> };
    expect(hist.events[0]).toMatchObject({ type: 'healed', source: 'watch', fingerprint: fingerprint(tok), newFingerprint: fingerprint(fresh) });
    expect(findLeaks([tok, tok2, fresh], [d.raw()])).toEqual([]);
    expect((await d.stop()).code).toBe(0);
  });

  it('SIGTERM during a regenerate call exits 0 promptly and parks the rotation in the journal', async () => {
    h = await makeHome(api.url);
    await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, requestTimeoutMs: 20_000 });
    const email = `d${++seq}@example.com`;
    const tok = api.addToken({ email, ageDays: 5 });
    await h.write('.cursor/mcp.json', cursorConfig(tok));
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started');
    api.fault({ path: '/v1/token/regenerate' }, { kind: 'hang' });
    const pending = runCli(['rotate'], { env: h.env, timeoutMs: 30_000 });
    for (let i = 0; i < 200 && !api.requests.some((q) => q.path === '/v1/token/regenerate' && q.bearerFingerprint === fingerprint(tok)); i++) await new Promise((r) => setTimeout(r, 25));
    const stopped = await d.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(8000);
    d = undefined;
    const cli = await pending;
    expect(cli.code).toBe(2);
    // The next command finishes it with the same Idempotency-Key (status only reports: it is offline).
    await runCli(['scan', '--offline'], { env: h.env });
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code, st.stderr).toBe(0);
    const live = api.liveTokens(email);
    expect(live).toHaveLength(1);
    expect(await h.read('.cursor/mcp.json')).toBe(cursorConfig(live[0]!.token));
  });

  it('rotates a due token on the opt-in schedule, with source "schedule"', async () => {
    h = await makeHome(api.url);
    // Every second, no jitter: the test need not wait for a real window.
    await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, autoRotate: { afterDays: 90, cron: '* * * * * *', jitterSeconds: 0 } });
    const email = `d${++seq}@example.com`;
    const tok = api.addToken({ email, ageDays: 120 });
    const young = api.addToken({ email: `young${seq}@example.com`, ageDays: 3 });
    await h.write('.cursor/mcp.json', cursorConfig(tok));
    await h.write('.gemini/settings.json', JSON.stringify({ mcpServers: { c: { command: 'x', env: { CERTORIX_API_TOKEN: young } } } }));
    d = spawnDaemon(h.env);
    await d.waitFor((l) => String(l.msg).startsWith('rotated') && l.fingerprint === fingerprint(tok), 10_000);
    const fresh = api.liveTokens(email)[0]!.token;
    expect(await h.read('.cursor/mcp.json')).toBe(cursorConfig(fresh));
    expect(api.isLive(young)).toBe(true);
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string; source: string }> };
    expect(hist.events[0]).toMatchObject({ type: 'rotated', source: 'schedule' });
    // The cron keeps firing every second: a rotated token is not rotated (or tried) again.
    await new Promise((r) => setTimeout(r, 2000));
    expect(api.all().filter((t) => t.email === email)).toHaveLength(2);
    expect(d.lines().filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect((await d.stop()).code).toBe(0);
  });

  it('logs a parse error in a changed config once and keeps its last good view', async () => {
    h = await makeHome(api.url);
    const tok = api.addToken({ email: `d${++seq}@example.com`, ageDays: 5 });
    await h.write('.cursor/mcp.json', cursorConfig(tok));
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started');
    await h.write('.cursor/mcp.json', cursorConfig(tok).replace('"mcpServers"', '"mcpServers" oops'));
    await d.waitFor((l) => l.level === 40 && l.file === h.path('.cursor/mcp.json'), 8000);
    // A touch that keeps the same broken content is not logged again.
    await h.write('.cursor/mcp.json', cursorConfig(tok).replace('"mcpServers"', '"mcpServers" oops'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(d.lines().filter((l) => l.file === h.path('.cursor/mcp.json') && l.level === 40)).toHaveLength(1);
    const st = JSON.parse((await runCli(['status', '--json'], { env: h.env })).stdout) as { tokens: Array<{ fingerprint: string; locations: Array<{ path: string }> }> };
    expect(st.tokens.find((t) => t.fingerprint === fingerprint(tok))?.locations.map((l) => l.path)).toEqual([h.path('.cursor/mcp.json')]);
    expect((await d.stop()).code).toBe(0);
  });

  it('does not start with a bad settings file', async () => {
    h = await makeHome(api.url);
    await h.settings({ warnAfterDays: 'soon' });
    const r = await runCli(['daemon'], { env: h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('warnAfterDays');
  });
});
