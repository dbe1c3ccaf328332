import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { fingerprint } from '../../src/fingerprint.js';

// Issue 9, points 1, 2, 5 and 9, end to end: real files, the fake API, the built CLI and a
// spawned daemon.

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

const FAST = { retry: { attempts: 2, baseMs: 5, maxMs: 20 }, requestTimeoutMs: 2000 };
const cursor = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';
const CLINE = FIXTURES.find((f) => f.client === 'cline')!;
const email = () => `a${++seq}-${process.pid}@example.com`;
type Status = { tokens: Array<{ fingerprint: string; ageDays: number | null; state: string; role: string | null }> };
const status = async (env: Record<string, string>, json = true) => runCli(json ? ['status', '--json'] : ['status'], { env });
const notes = (file: string): Array<{ title: string; body: string }> => {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { title: string; body: string });
  } catch {
    return [];
  }
};

/** Processes of a process group that are running (not zombies), from /proc; [] where there is no /proc. */
function liveGroupMembers(pgid: number): string[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  return pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(f[2]) === pgid && f[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

/** Notifications are written asynchronously after the log line: wait for one. */
async function waitForNote(file: string, pred: (n: { title: string; body: string }) => boolean, timeoutMs = 5000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await new Promise((r) => setTimeout(r, 50))) if (notes(file).some(pred)) return true;
  return false;
}

describe('token facts stay true', () => {
  it('status first (offline) shows the age as unknown, then the daemon asks the API and warns about the 93-day-old token', async () => {
    h = await makeHome(api.url);
    await h.settings({ ...FAST, notify: false });
    const tok = api.addToken({ email: email(), ageDays: 93 });
    const fp = fingerprint(tok);
    await h.write('.cursor/mcp.json', cursor(tok), 0o600);

    const first = await status(h.env);
    expect(first.code, first.stderr).toBe(0);
    expect((JSON.parse(first.stdout) as Status).tokens).toEqual([expect.objectContaining({ fingerprint: fp, ageDays: null, state: 'ok', role: null })]);
    expect(first.stderr).toMatch(/unknown age.*"mcp-token-rotator scan".*daemon/);
    const table = await status(h.env, false);
    expect(table.stdout).toMatch(new RegExp(`${fp}\\s+\\?\\s+\\?\\s+ok`));
    expect(table.stdout).toContain('token(s) of unknown age');
    expect(table.stdout).not.toMatch(/\b0d\b/);

    const notesFile = h.path('notes.jsonl');
    d = spawnDaemon({ ...h.env, MCP_TOKEN_ROTATOR_NOTIFY_FILE: notesFile });
    const warn = await d.waitFor((l) => l.level === 40 && l.fingerprint === fp && l.ageDays === 93);
    expect(String(warn.msg)).toContain(`rotate --fingerprint ${fp}`);
    const after = await status(h.env);
    expect(after.code).toBe(1);
    expect((JSON.parse(after.stdout) as Status).tokens[0]).toMatchObject({ ageDays: 93, state: 'due', role: 'editor' });
    // notify: false silences the daemon's notifications, this one included.
    expect(notes(notesFile)).toEqual([]);
    expect((await d.stop()).code).toBe(0);
  });

  it('a token revoked at the API becomes invalid on SIGHUP (warning, notification, status exit 2); SIGHUP also reloads the settings', async () => {
    h = await makeHome(api.url);
    await h.settings(FAST);
    const tok = api.addToken({ email: email(), ageDays: 10 });
    const young = api.addToken({ email: email(), ageDays: 10 });
    const fp = fingerprint(tok);
    await h.write('.cursor/mcp.json', cursor(tok), 0o600);
    await h.write('.gemini/settings.json', JSON.stringify({ mcpServers: { c: { command: 'x', env: { CERTORIX_API_TOKEN: young } } } }), 0o600);
    const notesFile = h.path('notes.jsonl');
    d = spawnDaemon({ ...h.env, MCP_TOKEN_ROTATOR_NOTIFY_FILE: notesFile });
    await d.waitFor((l) => l.msg === 'daemon started');
    await d.waitFor((l) => String(l.msg).startsWith('checked 2 token(s)'));
    expect((await status(h.env)).code).toBe(0);

    api.revoke(tok); // regenerated in the web UI, or revoked by an admin
    await h.settings({ ...FAST, warnAfterDays: 5 });
    const calls = api.requests.length;
    d.child.kill('SIGHUP');
    const warn = await d.waitFor((l) => l.level === 40 && l.fingerprint === fp && String(l.msg).includes('invalid'));
    expect(String(warn.msg)).toContain(`set-token --fingerprint ${fp}`);
    // The reloaded warnAfterDays (5) makes the other, 10-day-old token due.
    await d.waitFor((l) => l.level === 40 && l.fingerprint === fingerprint(young) && l.warnAfterDays === 5);
    expect(api.requests.slice(calls).filter((q) => q.path === '/v1/token')).toHaveLength(2);
    expect(await waitForNote(notesFile, (n) => n.title === 'Certorix token invalid' && n.body.includes(fp))).toBe(true);
    const st = await status(h.env);
    expect(st.code).toBe(2);
    expect((JSON.parse(st.stdout) as Status).tokens.find((t) => t.fingerprint === fp)?.state).toBe('invalid');
    expect(findLeaks([tok, young], [d.raw(), readFileSync(notesFile)])).toEqual([]);

    // A bad settings file on SIGHUP: logged with its path, the settings in force stay, the daemon stays up.
    await h.settings({ ...FAST, warnAfterDays: 'soon' });
    d.child.kill('SIGHUP');
    const bad = await d.waitFor((l) => l.level === 50 && String(l.msg).includes('settings file is not valid'));
    expect(bad.file).toBe(h.path('.config/mcp-token-rotator/config.json'));
    expect(String(bad.err)).toContain('warnAfterDays');
    await new Promise((r) => setTimeout(r, 300));
    expect(d.child.exitCode).toBeNull();
    expect((await d.stop()).code).toBe(0);
  });

  it('backs off while the API is unreachable and learns the facts once it answers', async () => {
    h = await makeHome(api.url);
    await h.settings(FAST);
    const tok = api.addToken({ email: email(), ageDays: 40 });
    const fp = fingerprint(tok);
    await h.write('.cursor/mcp.json', cursor(tok), 0o600);
    api.fault({ path: '/v1/token' }, { kind: 'status', status: 503 }, 3);
    const t0 = api.requests.length;
    d = spawnDaemon({ ...h.env, MCP_TOKEN_ROTATOR_TICK_MS: '250' });
    await d.waitFor((l) => l.level === 40 && String(l.msg).startsWith('could not reach the API'));
    await d.waitFor((l) => String(l.msg).startsWith('checked 1 token(s)'), 15_000);
    const st = JSON.parse((await status(h.env)).stdout) as Status;
    expect(st.tokens[0]).toMatchObject({ fingerprint: fp, ageDays: 40, state: 'ok' });
    // Loud once per outage, then quiet; calls spaced out by the backoff (250, 500, 1000 ms), not every tick.
    expect(d.lines().filter((l) => l.level === 40 && String(l.msg).startsWith('could not reach'))).toHaveLength(1);
    expect(api.requests.slice(t0).filter((q) => q.path === '/v1/token').length).toBe(4);
    expect((await d.stop()).code).toBe(0);
  });
});

describe('heal only where the token lived', () => {
  it('a planted retired token in a new world-readable file is left alone and reported; a known private location is healed; SIGTERM right after the heal exits 0', async () => {
    h = await makeHome(api.url);
    await h.settings({ ...FAST, extraConfigs: ['~/code/*/.mcp.json'] });
    const tok = api.addToken({ email: email(), ageDays: 5 });
    const fp = fingerprint(tok);
    await h.write(CLINE.rel, CLINE.content(tok), 0o600);
    const notesFile = h.path('notes.jsonl');
    d = spawnDaemon({ ...h.env, MCP_TOKEN_ROTATOR_NOTIFY_FILE: notesFile });
    await d.waitFor((l) => l.msg === 'daemon started');
    const r = await runCli(['rotate', '--fingerprint', fp], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const fresh = (JSON.parse((await status(h.env)).stdout) as Status).tokens[0]!.fingerprint;

    // A cloned repository's committed .mcp.json with the retired token, world-readable.
    const planted = cursor(tok);
    const plantedPath = await h.write('code/cloned/.mcp.json', planted, 0o644);
    const refused = await d.waitFor((l) => l.level === 40 && l.file === plantedPath, 8000);
    expect(refused.reasons).toEqual(['unknown-location', 'readable-by-others']);
    expect(String(refused.msg)).toContain(`Retired token ${fp} appeared in ${plantedPath}`);
    // The Cline config restores its own old copy: the daemon heals it.
    await h.write(CLINE.rel, CLINE.content(tok));
    await d.waitFor((l) => String(l.msg).startsWith('healed') && l.fingerprint === fp, 8000);
    const stopped = await d.stop('SIGTERM');
    expect(stopped).toMatchObject({ code: 0, signal: null });
    expect(d.lines().some((l) => l.msg === 'daemon stopped')).toBe(true);
    d = undefined;

    expect(await h.read('code/cloned/.mcp.json')).toBe(planted); // untouched
    expect(await h.read(CLINE.rel)).not.toContain(tok);
    expect(await waitForNote(notesFile, (n) => n.body.includes(plantedPath))).toBe(true);
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string; files: string[]; newFingerprint: string }> };
    expect(hist.events.find((e) => e.type === 'heal-refused')).toMatchObject({ files: [plantedPath], newFingerprint: fresh });
    const doc = await runCli(['doctor', '--json', '--offline'], { env: h.env });
    const findings = (JSON.parse(doc.stdout) as { findings: Array<{ id: string; file?: string; message: string }> }).findings;
    const f = findings.find((x) => x.id === 'token-retired-unexpected');
    expect(f?.file).toBe(plantedPath);
    expect(f?.message).toMatch(/never held this token before/);
  });
});

describe('hooks, children and a clean stop', () => {
  it('a hook past hooks.timeoutMs is killed with its process group; rotate stays fast and done; hooks get no secrets', async () => {
    h = await makeHome(api.url);
    const pidFile = h.path('hook.pid');
    const envFile = h.path('hook.env');
    await h.settings({ ...FAST, hooks: { postRotate: [`echo $$ > '${pidFile}'; env > '${envFile}'; sleep 30`], timeoutMs: 1000 } });
    const tok = api.addToken({ email: email(), ageDays: 5 });
    await h.write('.cursor/mcp.json', cursor(tok), 0o600);
    const t0 = Date.now();
    const r = await runCli(['rotate', '--json'], { env: { ...h.env, CERTORIX_API_TOKEN: tok, GITHUB_TOKEN: 'ghp_x', SOME_PASSWORD: 'p' }, timeoutMs: 20_000 });
    const ms = Date.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    expect(ms).toBeLessThan(8000);
    const res = JSON.parse(r.stdout) as { rotations: Array<{ status: string; hooks: Array<{ ok: boolean; error: string }> }> };
    expect(res.rotations[0]?.status).toBe('rotated');
    expect(res.rotations[0]?.hooks[0]).toMatchObject({ ok: false });
    expect(res.rotations[0]?.hooks[0]?.error).toMatch(/timed out after 1000 ms/);
    // The whole group is gone (zombies aside: reaping them is the parent's business).
    const pgid = Number(readFileSync(pidFile, 'utf8'));
    let alive = liveGroupMembers(pgid);
    for (let i = 0; i < 60 && alive.length; i++) {
      await new Promise((res2) => setTimeout(res2, 50));
      alive = liveGroupMembers(pgid);
    }
    expect(alive).toEqual([]);
    const env = readFileSync(envFile, 'utf8');
    expect(env).toContain('MCP_TOKEN_ROTATOR_NEW_FINGERPRINT=');
    expect(env).not.toMatch(/CERTORIX_API_TOKEN|GITHUB_TOKEN|SOME_PASSWORD/);
    expect(findLeaks([tok], [env])).toEqual([]);
  });

  it('a hook that leaves a background child does not hold the daemon; SIGTERM right after a rotation that wrote a Cline config exits 0', async () => {
    h = await makeHome(api.url);
    await h.settings({ ...FAST, hooks: { postRotate: ['sleep 5 &'], timeoutMs: 30_000 } });
    const tok = api.addToken({ email: email(), ageDays: 5 });
    await h.write(CLINE.rel, CLINE.content(tok), 0o600);
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started');
    const t0 = Date.now();
    const r = await runCli(['rotate'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(4000);
    await d.waitFor((l) => String(l.msg).startsWith('rotated token'));
    const stopped = await d.stop('SIGTERM');
    expect(stopped).toMatchObject({ code: 0, signal: null });
    const msgs = d.lines().map((l) => l.msg);
    expect(msgs.indexOf('daemon stopped')).toBeGreaterThan(msgs.indexOf('daemon stopping'));
    d = undefined;
  });

  it.skipIf(process.platform !== 'linux')('the daemon keeps its memory out of core dumps', async () => {
    h = await makeHome(api.url);
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started');
    const pid = d.child.pid!;
    expect(readFileSync(`/proc/${pid}/coredump_filter`, 'utf8').trim()).toBe('00000000');
    let limits = '';
    for (let i = 0; i < 40 && !/Max core file size\s+0\s+0/.test(limits); i++) {
      limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
      await new Promise((r) => setTimeout(r, 50));
    }
    let hasPrlimit = true;
    try {
      statSync('/usr/bin/prlimit');
    } catch {
      hasPrlimit = false;
    }
    if (hasPrlimit) expect(limits).toMatch(/Max core file size\s+0\s+0/);
    expect((await d.stop()).code).toBe(0);
  });
});
