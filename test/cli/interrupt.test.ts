/**
 * Issue 16 item 5: Ctrl-C (SIGINT) during `rotate` never exits silently, and once the
 * regenerate call is out the configs are written before it exits (or a second Ctrl-C says
 * what is pending and the command that finishes it). Real signals to the spawned CLI, at
 * failpoints (MCP_TOKEN_ROTATOR_SIGINT_AT) or while the fake API holds its answer.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { CLI, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';
import { interruptAction, pendingMessage } from '../../src/rotation/interrupt.js';

const REGENERATE = '/v1/token/regenerate';
const DESKTOP = '.config/Claude/claude_desktop_config.json';
const CURSOR = '.cursor/mcp.json';
const cfg = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome;
let tok: string;
let email = '';
let seq = 0;
const live = () => api.liveTokens(email)[0]!.token;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `rotate`, with SIGINT sent `times` times once `when` says so (polled every 20 ms). */
function rotateWithCtrlC(env: Record<string, string>, opts: { when?: () => boolean; times?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, 'rotate'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let sent = 0;
    const poll = setInterval(() => {
      if (!opts.when || sent >= (opts.times ?? 1) || !opts.when()) return;
      child.kill('SIGINT');
      sent++;
    }, 20);
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(kill);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const regenerateSent = () => api.requests.some((q) => q.path === REGENERATE && q.bearerFingerprint === fingerprint(tok));

describe('Ctrl-C during rotate', () => {
  beforeEach(async () => {
    email = `ctrlc${++seq}@example.com`;
    h = await makeHome(api.url);
    tok = api.addToken({ email, ageDays: 10 });
    await h.write(DESKTOP, cfg(tok));
    await h.write(CURSOR, cfg(tok));
    expect((await runCli(['scan'], { env: h.env })).code).toBe(0);
  });
  afterEach(() => h.cleanup());

  it('after the new token is journaled: the writes finish, it says so, exit 130, nothing left pending', async () => {
    const r = await rotateWithCtrlC({ ...h.env, MCP_TOKEN_ROTATOR_SIGINT_AT: 'after-new-token' });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain(`Ctrl-C: finishing the rotation of token ${fingerprint(tok)} first`);
    expect(await h.read(DESKTOP)).toBe(cfg(live()));
    expect(await h.read(CURSOR)).toBe(cfg(live()));
    expect(live()).not.toBe(tok);
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code, st.stdout).toBe(0);
  });

  it('while the regenerate answer is delayed: one Ctrl-C waits for it and writes every config', async () => {
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'delay', ms: 1500 }, 1);
    const r = await rotateWithCtrlC(h.env, { when: regenerateSent });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('finishing the rotation');
    expect(await h.read(DESKTOP)).toBe(cfg(live()));
    expect(await h.read(CURSOR)).toBe(cfg(live()));
  });

  it('a second Ctrl-C stops at once and names what is pending and the command that finishes it; that command does', async () => {
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'delay', ms: 3000 }, 1);
    const r = await rotateWithCtrlC(h.env, { when: regenerateSent, times: 2 });
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(2800);
    expect(r.stderr).toContain(`the regenerate call for token ${fingerprint(tok)} was out`);
    expect(r.stderr).toContain(`mcp-token-rotator rotate --fingerprint ${fingerprint(tok)}`);
    // The fake answers anyway (the old token dies); the named command replays the same key.
    for (let i = 0; i < 200 && api.isLive(tok); i++) await new Promise((res) => setTimeout(res, 25));
    const fin = await runCli(['rotate', '--fingerprint', fingerprint(tok)], { env: h.env });
    expect(fin.code, fin.stderr).toBe(0);
    expect(api.liveTokens(email)).toHaveLength(1);
    expect(await h.read(DESKTOP)).toBe(cfg(live()));
  });

  it('before the regenerate call (its preflight GET held by the API): exits 130 at once, saying nothing was regenerated; nothing to finish', async () => {
    const before = api.regenerateCount;
    api.fault({ method: 'GET', path: '/v1/token', bearer: fingerprint(tok) }, { kind: 'delay', ms: 3000 }, 1);
    const checking = () => api.requests.some((q) => q.method === 'GET' && q.status === 0 && q.bearerFingerprint === fingerprint(tok));
    const r = await rotateWithCtrlC(h.env, { when: checking });
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(2800);
    expect(r.stderr).toContain('nothing was regenerated and no config was changed');
    expect(api.regenerateCount).toBe(before);
    expect(api.isLive(tok)).toBe(true);
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code, st.stdout).toBe(0);
    expect((JSON.parse(st.stdout) as { unfinishedRotations: unknown[] }).unfinishedRotations).toEqual([]);
  });
});

describe('the interrupt decisions (pure)', () => {
  it.each([
    ['idle', 1, 'exit'],
    ['idle', 2, 'exit'],
    ['before-call', 1, 'cancel-and-exit'],
    ['calling', 1, 'finish-first'],
    ['calling', 2, 'exit-pending'],
    ['writing', 1, 'finish-first'],
    ['writing', 3, 'exit-pending'],
  ] as const)('%s, Ctrl-C #%i -> %s', (stage, n, action) => {
    expect(interruptAction(stage, n)).toBe(action);
  });

  it('the pending message lists the configs still holding the dead token and the command', () => {
    const m = pendingMessage({ oldFingerprint: 'aaaaaaaaaaaa', step: 'regenerated', newFingerprint: 'bbbbbbbbbbbb', files: [{ path: '/h/a.json', written: true }, { path: '/h/b.json', written: false }] }, 'aaaaaaaaaaaa');
    expect(m).toContain('new bbbbbbbbbbbb');
    expect(m).toContain('1 config(s) still hold the dead token:\n  /h/b.json\n');
    expect(m).not.toContain('/h/a.json');
    expect(m).toContain('mcp-token-rotator rotate --fingerprint aaaaaaaaaaaa');
  });
});
