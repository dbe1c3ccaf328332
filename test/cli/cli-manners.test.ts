/**
 * Issue 16, items 3, 4, 6-10 (colour): the CLI never leaves a user guessing. Each test runs
 * the built CLI as a process (and on a pseudo-terminal through `script` where the terminal
 * matters) against the fake API.
 */
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';
import { hasScript, runCliOnPty } from '../helpers/script-pty.js';
import { fingerprint } from '../../src/fingerprint.js';

const REGENERATE = '/v1/token/regenerate';
const claudeDesktop = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp'], env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';
const cursor = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';
const DESKTOP = '.config/Claude/claude_desktop_config.json';
const CURSOR = '.cursor/mcp.json';
// eslint-disable-next-line no-control-regex -- colour codes are what is checked
const SGR = /\x1b\[[0-9;]*m/;

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome;
let tok: string;
let seq = 0;
let email = '';
beforeEach(async () => {
  email = `manners${++seq}@example.com`;
  h = await makeHome(api.url);
  tok = api.addToken({ email, role: 'editor', ageDays: 10 });
  await h.write(DESKTOP, claudeDesktop(tok));
  await h.write(CURSOR, cursor(tok));
});
afterEach(() => h.cleanup());

const live = () => api.liveTokens(email)[0]!.token;

interface StatusDoc {
  tokens: Array<{ fingerprint: string; state: string; locations: unknown[] }>;
  unfinishedRotations: Array<{ fingerprint: string; newFingerprint: string | null; step: string; finishWith: string }>;
  brokenConfigs: Array<{ path: string; client: string; fingerprints: string[] }>;
}

/** A rotation left at `intent`: every regenerate try answered 503 (the fast retries of makeHome). */
async function leaveUnfinished(): Promise<void> {
  expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
  api.fault({ method: 'POST', path: REGENERATE }, { kind: 'status', status: 503 }, 4);
  const r = await runCli(['rotate'], { env: h.env });
  expect(r.code, r.stderr).toBe(2);
}

describe('status is offline and complete (item 3)', () => {
  it('an unfinished rotation: no API call, exit 2, the rotation and the command that finishes it (human and JSON)', async () => {
    await leaveUnfinished();
    const before = api.requests.length;
    const t0 = Date.now();
    const j = await runCli(['status', '--json'], { env: h.env });
    const human = await runCli(['status'], { env: h.env });
    // history is offline too (contract guarantee 2): it never finishes the rotation either.
    expect((await runCli(['history', '--json'], { env: h.env })).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(api.requests.length, 'status or history called the API').toBe(before);
    expect(j.code, j.stderr).toBe(2);
    const doc = JSON.parse(j.stdout) as StatusDoc;
    expect(doc.unfinishedRotations).toEqual([expect.objectContaining({ fingerprint: fingerprint(tok), newFingerprint: null, step: 'intent', finishWith: `mcp-token-rotator rotate --fingerprint ${fingerprint(tok)}` })]);
    expect(human.code).toBe(2);
    expect(human.stdout).toContain(`Unfinished rotation of token ${fingerprint(tok)}`);
    expect(human.stdout).toContain(`Finish it: mcp-token-rotator rotate --fingerprint ${fingerprint(tok)}`);
    // The named command does finish it (item 6: with the restart advice), and reports it rotated.
    const fin = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: h.env });
    expect(fin.code, fin.stderr).toBe(0);
    expect(`${fin.stdout}${fin.stderr}`).toContain('Claude Desktop');
    expect(await h.read(DESKTOP)).toBe(claudeDesktop(live()));
    expect(live()).not.toBe(tok);
    expect((await runCli(['status', '--json'], { env: h.env })).code).toBe(0);
  });

  it('a tracked config that no longer parses: exit 2, named, in JSON too; without a scan in between', async () => {
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
    expect((await runCli(['status'], { env: h.env })).code).toBe(0);
    await h.write(CURSOR, '{ "mcpServers": { oops');
    const j = await runCli(['status', '--json'], { env: h.env });
    expect(j.code, j.stderr).toBe(2);
    expect((JSON.parse(j.stdout) as StatusDoc).brokenConfigs).toEqual([expect.objectContaining({ path: h.path(CURSOR), client: 'cursor', fingerprints: [fingerprint(tok)] })]);
    const human = await runCli(['status'], { env: h.env });
    expect(human.code).toBe(2);
    expect(human.stdout).toContain('Cannot parse ~/.cursor/mcp.json');
  });
});

describe('status fits the terminal (item 4) and colours states (item 10)', () => {
  beforeEach(async () => {
    await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, extraConfigs: ['~/code/*/.mcp.json'], broker: { store: 'file' } });
    for (let i = 0; i < 62; i++) await h.write(`code/some-rather-long-project-name-${i}/.mcp.json`, cursor(tok));
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
  });

  it('62 configs: every line within COLUMNS, grouped by client with counts; --verbose lists each file; JSON keeps every location', async () => {
    const r = await runCli(['status'], { env: { ...h.env, COLUMNS: '70' } });
    expect(r.code, r.stderr).toBe(0);
    const table = r.stdout.split('\n\n')[0]!.split('\n');
    for (const l of table) expect(l.length, l).toBeLessThanOrEqual(70);
    expect(r.stdout).toContain('claude-code (62)');
    expect(r.stdout).toMatch(/claude-desktop,/);
    expect(r.stdout).not.toMatch(SGR);
    const v = await runCli(['status', '--verbose'], { env: { ...h.env, COLUMNS: '70' } });
    for (let i = 0; i < 62; i++) expect(v.stdout).toContain(`~/code/some-rather-long-project-name-${i}/.mcp.json  (claude-code)\n`);
    const j = await runCli(['status', '--json'], { env: h.env });
    expect((JSON.parse(j.stdout) as StatusDoc).tokens[0]!.locations).toHaveLength(64);
  });

  it.skipIf(!hasScript())('on a terminal: its width when COLUMNS is unset, state colours; NO_COLOR turns them off; FORCE_COLOR forces them; never in --json', async () => {
    const env = { ...h.env };
    const tty = await runCliOnPty(['status'], { env, cols: 50 });
    expect(tty.code, tty.output).toBe(0);
    const lines = tty.output.split('\r\n');
    const table = lines.slice(0, lines.findIndex((l) => l === ''));
    expect(table.length).toBeGreaterThan(2);
    for (const l of table) expect(l.replace(/\x1b\[[0-9;]*m/g, '').length, l).toBeLessThanOrEqual(50); // eslint-disable-line no-control-regex
    expect(tty.output).toContain('\x1b[32mok\x1b[0m');
    expect((await runCliOnPty(['status'], { env: { ...env, NO_COLOR: '1' } })).output).not.toMatch(SGR);
    expect((await runCliOnPty(['status', '--json'], { env })).output).not.toMatch(SGR);
    expect((await runCli(['status'], { env: { ...env, FORCE_COLOR: '1' } })).stdout).toContain('\x1b[32mok\x1b[0m');
  });
});

describe('arguments are never echoed (item 8)', () => {
  it('set-token <value>: exit 64, says stdin and shell history, never prints the value', async () => {
    const r = await runCli(['set-token', tok], { env: h.env });
    expect(r.code).toBe(64);
    expect(`${r.stdout}${r.stderr}`).not.toContain(tok);
    expect(r.stderr).toMatch(/stdin/);
    expect(r.stderr).toMatch(/shell history/);
    expect(api.isLive(tok)).toBe(true);
  });

  it('a bad --fingerprint, --forget or positional is not printed back', async () => {
    for (const args of [['rotate', '--fingerprint', tok], ['set-token', '--fingerprint', tok], ['history', '--fingerprint', tok], ['status', '--forget', tok], ['status', tok], ['broker', 'status', tok], ['broker', tok]]) {
      const r = await runCli(args, { env: h.env });
      expect(r.code, args[0]).toBe(64);
      expect(`${r.stdout}${r.stderr}`, args.join(' ')).not.toContain(tok.slice(4));
    }
    const r = await runCli(['rotate', '--fingerprint', tok], { env: h.env });
    expect(r.stderr).toContain(fingerprint(tok));
    expect(r.stderr).toMatch(/shell history/);
  });

  it.skipIf(!hasScript())('interactive set-token reads without echo, and one Enter finishes', async () => {
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
    const next = api.addToken({ email, role: 'editor' });
    api.revoke(tok);
    const r = await runCliOnPty(['set-token'], { env: h.env, input: `${next}\r`, waitFor: 'Paste the new token', timeoutMs: 15_000 });
    expect(r.code, r.output).toBe(0);
    expect(r.output).not.toContain(next);
    expect(r.output).toContain(fingerprint(next));
    expect(await h.read(CURSOR)).toBe(cursor(next));
  });
});

describe('two rotations at once (item 7)', () => {
  it('the second says it waits, then reports the token already rotated (exit 0), never rotation-refused', async () => {
    // The first run's answer is held long enough for the second to start and wait (within the request timeout).
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 20_000, broker: { store: 'file' } });
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
    const regeneratedBefore = api.regenerateCount;
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'delay', ms: 5000 }, 1);
    const first = runCli(['rotate'], { env: h.env });
    // The first holds the lock once its regenerate call is out.
    for (let i = 0; i < 400 && !api.requests.some((q) => q.path === REGENERATE && q.bearerFingerprint === fingerprint(tok)); i++) await new Promise((r) => setTimeout(r, 25));
    const second = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: h.env });
    const a = await first;
    expect(a.code, JSON.stringify(a)).toBe(0);
    expect(second.stderr, JSON.stringify(second)).toMatch(/Waiting for another rotation/);
    expect(second.code, JSON.stringify(second)).toBe(0);
    expect(second.stdout, JSON.stringify(second)).toContain(`already rotated to ${fingerprint(live())}`);
    expect(api.regenerateCount - regeneratedBefore).toBe(1);
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string }> };
    expect(hist.events.map((e) => e.type)).not.toContain('rotation-refused');
  });

  it('a mistyped --fingerprint is a usage error (64), not a history event', async () => {
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
    const r = await runCli(['rotate', '--fingerprint', '0123456789ab'], { env: h.env });
    expect(r.code, r.stderr).toBe(64);
    expect(r.stderr).toContain('No tracked token has the fingerprint 0123456789ab');
    const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string }> };
    expect(hist.events).toEqual([]);
  });
});

describe('a rotation finished later keeps the restart advice (item 6)', () => {
  it('the next command that finishes it prints which clients to restart', async () => {
    await leaveUnfinished();
    const r = await runCli(['scan', '--offline'], { env: h.env });
    expect(r.stderr).toContain(`Finished an interrupted rotation: token ${fingerprint(tok)}`);
    expect(r.stderr).toContain('To pick up the new token:');
    expect(r.stderr).toMatch(/Claude Desktop must be quit fully/);
    expect(await h.read(DESKTOP)).toBe(claudeDesktop(live()));
  });
});

describe('network waits are not silent; dry run asks the API (item 9)', () => {
  it('one error with one hint when the API cannot be reached', async () => {
    expect((await runCli(['scan', '--offline'], { env: h.env })).code).toBe(0);
    const r = await runCli(['rotate'], { env: { ...h.env, CERTORIX_API_URL: 'http://127.0.0.1:9' } });
    expect(r.code).toBe(2);
    expect(r.stderr.match(/->/g) ?? []).toHaveLength(1);
  });

  it.skipIf(!hasScript())('on a terminal, retries show the attempt and the next try; off a terminal they do not', async () => {
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
    await h.settings({ retry: { attempts: 3, baseMs: 300, maxMs: 600 }, broker: { store: 'file' } });
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'status', status: 503 }, 2);
    const r = await runCliOnPty(['rotate'], { env: h.env });
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(new RegExp(`regenerating token ${fingerprint(tok)}: attempt 1 of 3 failed \\(.*\\); next try in \\d+ s`));
    expect(r.output).toContain('attempt 2 of 3');
    const next = live();
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'status', status: 503 }, 1);
    const piped = await runCli(['rotate'], { env: h.env });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).not.toContain('attempt 1 of 3');
    expect(live()).not.toBe(next);
  });

  it('rotate --dry-run checks each token with GET (never regenerate): dead token or unreachable API exit 2', async () => {
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
    const before = api.requests.length;
    const ok = await runCli(['rotate', '--dry-run'], { env: h.env });
    expect(ok.code, ok.stderr).toBe(0);
    const calls = api.requests.slice(before);
    expect(calls.some((q) => q.method === 'GET' && q.path === '/v1/token' && q.bearerFingerprint === fingerprint(tok))).toBe(true);
    expect(calls.filter((q) => q.path === REGENERATE)).toEqual([]);
    const down = await runCli(['rotate', '--dry-run'], { env: { ...h.env, CERTORIX_API_URL: 'http://127.0.0.1:9' } });
    expect(down.code).toBe(2);
    api.revoke(tok);
    const dead = await runCli(['rotate', '--dry-run'], { env: h.env });
    expect(dead.code).toBe(2);
    expect(dead.stderr).toContain(`Token ${fingerprint(tok)} is dead`);
    // A dry run records nothing: the token is not marked invalid by it.
    expect((await runCli(['status', '--json'], { env: h.env })).code).toBe(0);
  });
});
