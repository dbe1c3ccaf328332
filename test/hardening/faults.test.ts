/**
 * Fault matrix for `rotate` against the fake API (docs/troubleshooting.md "what you see when something
 * fails"). Each case: a temp HOME with a few realistic configs, one fault injected on
 * POST /v1/token/regenerate, the spawned CLI, then one `status` run; afterwards every config
 * holds exactly the token the fake says is live for the account (expectInvariant).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { parse as parseJsonc } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { defaultTokenFactory, startFakeCertorix, type Fault, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, runCli } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';
import { FAST_SETTINGS, REGENERATE, expectInvariant, liveToken, makeWorld, regenerateRequests, snapshot, stampRequests, status, tempFilesUnder, type World } from './helpers.js';

let api: FakeCertorix;
let w: World;
beforeEach(async () => {
  api = await startFakeCertorix();
  w = await makeWorld(api);
});
afterEach(async () => {
  await api.close();
  await w.h.cleanup();
});

const onRegenerate = { method: 'POST', path: REGENERATE };

/** Every regenerate request of this rotation carried one and the same Idempotency-Key. */
function expectOneKey(n: number): void {
  const reqs = regenerateRequests(api);
  expect(reqs, 'regenerate requests').toHaveLength(n);
  const keys = new Set(reqs.map((q) => q.idempotencyKey));
  expect(keys.size, 'distinct Idempotency-Keys').toBe(1);
  expect([...keys][0]).toMatch(/^[\x21-\x7e]{1,255}$/);
  // Always the old token as bearer: a replay with another bearer would get 422.
  expect(new Set(reqs.map((q) => q.bearerFingerprint))).toEqual(new Set([fingerprint(w.tok)]));
}

describe('transient faults are retried with the same Idempotency-Key and end with exactly one new token', () => {
  const cases: Array<[string, Fault, number]> = [
    ['reset before the server acted', { kind: 'reset-before' }, 2],
    ['reset after the server acted (lost response)', { kind: 'reset-after' }, 2],
    ['500 once', { kind: 'status', status: 500 }, 2],
    ['502 once', { kind: 'status', status: 502 }, 2],
    ['503 once', { kind: 'status', status: 503 }, 2],
    ['a malformed 2xx (an HTML page from a proxy)', { kind: 'malformed' }, 2],
    ['a 201 whose JSON lacks the token', { kind: 'status', status: 201, body: '{"id":"tok_x","created_at":"2026-01-01T00:00:00Z"}' }, 2],
  ];
  it.each(cases)('%s', async (_name, fault, requests) => {
    api.fault(onRegenerate, fault, 1);
    const r = await runCli(['rotate', '--json'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(api.regenerateCount).toBe(1);
    expectOneKey(requests);
    expect(api.isLive(w.tok)).toBe(false);
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ status: string; newFingerprint: string }> };
    const live = liveToken(api, w.email);
    expect(doc.rotations).toEqual([expect.objectContaining({ status: 'rotated', newFingerprint: fingerprint(live) })]);
    const st = await status(w);
    expect(st.code, st.stderr).toBe(0);
    await expectInvariant(api, w, st);
    expect(findLeaks([w.tok, live], [r.stdout, r.stderr])).toEqual([]);
  });

  it('a timeout (the server hangs) is cut at requestTimeoutMs and retried', async () => {
    api.fault(onRegenerate, { kind: 'hang' }, 1);
    const t0 = Date.now();
    const r = await runCli(['rotate'], { env: w.h.env });
    const ms = Date.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(FAST_SETTINGS.requestTimeoutMs);
    expect(ms).toBeLessThan(8_000);
    expect(api.regenerateCount).toBe(1);
    expectOneKey(2);
    await expectInvariant(api, w, await status(w));
  });

  it('a timeout after which the server still acts (a slow answer, not a dead one) yields one token, not two', async () => {
    // The first call is answered after 1.5 s, long after the client gave up at 0.5 s and its
    // retry was served: the late one must be the idempotent replay.
    api.fault(onRegenerate, { kind: 'delay', ms: 1500 }, 1);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 1600)); // let the slow first call land on the fake
    expect(api.regenerateCount).toBe(1);
    expectOneKey(2);
    await expectInvariant(api, w, await status(w));
  });

  it('429 with Retry-After is retried after the delay the server asked for', async () => {
    await w.h.settings({ requestTimeoutMs: 2000, retry: { attempts: 3, baseMs: 5, maxMs: 5000 } });
    const at = stampRequests(api);
    api.fault(onRegenerate, { kind: 'status', status: 429, retryAfter: '1' }, 1);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    expectOneKey(2);
    const [first, second] = regenerateRequests(api);
    const gap = at.get(second!)! - at.get(first!)!;
    expect(gap, 'ms between the 429 and the retry').toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(3000);
    await expectInvariant(api, w, await status(w));
  });

  it('429 with a Retry-After longer than retry.maxMs waits maxMs, not forever', async () => {
    await w.h.settings({ requestTimeoutMs: 2000, retry: { attempts: 3, baseMs: 5, maxMs: 300 } });
    const at = stampRequests(api);
    api.fault(onRegenerate, { kind: 'status', status: 429, retryAfter: '3600' }, 1);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const [first, second] = regenerateRequests(api);
    const gap = at.get(second!)! - at.get(first!)!;
    expect(gap).toBeGreaterThanOrEqual(280);
    expect(gap).toBeLessThan(2500);
    await expectInvariant(api, w, await status(w));
  });
});

describe('a fault that outlasts the retries leaves the rotation journaled, and the next command finishes it', () => {
  it('persistent 503: exit 2, status says rotating (exit 2), configs untouched; once cleared, status finishes with the same key', async () => {
    const before = await snapshot(w);
    // Three tries in `rotate`, three more in the first `status` (it resumes the journal first); then it is gone.
    api.fault(onRegenerate, { kind: 'status', status: 503 }, 6);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(fingerprint(w.tok));
    expect(r.stderr).toMatch(/503/);
    expect(r.stderr).toMatch(/journaled/);
    expect(regenerateRequests(api)).toHaveLength(3); // bounded: retry.attempts
    expect(await snapshot(w)).toEqual(before);
    expect(api.isLive(w.tok)).toBe(true);

    const stuck = await status(w);
    expect(stuck.code).toBe(2);
    expect(stuck.tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(w.tok), state: 'rotating' })]);
    expect(await snapshot(w)).toEqual(before);
    expect(tempFilesUnder(w.h.home)).toEqual([]);

    const done = await status(w);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/Finished an interrupted rotation/);
    expect(api.regenerateCount).toBe(1);
    expectOneKey(7);
    const live = await expectInvariant(api, w, done);
    expect(done.tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(live), state: 'ok' })]);
  });

  it('every response lost (reset after acting, each try): the old token is dead, yet the next command recovers the new one by replay', async () => {
    api.fault(onRegenerate, { kind: 'reset-after' }, 3);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/journaled/);
    // The server acted on the first try: the configs now hold a dead token, and the live
    // one is known only to the server's idempotency record, replayable with the journaled key.
    expect(api.isLive(w.tok)).toBe(false);
    expect(api.regenerateCount).toBe(1);
    const st = await status(w);
    expect(st.code, st.stderr).toBe(0);
    expect(api.regenerateCount).toBe(1);
    expectOneKey(4);
    await expectInvariant(api, w, st);
  });
});

describe('a fault in the final check (GET /v1/token of the new token)', () => {
  it('persistent 503 after every config was written: exit 2, the files already hold the live token; the next command finishes', async () => {
    // `rotate` calls GET /v1/token with the old token before regenerating (it must pass) and
    // with the new one to verify it, after the writes: only the second one fails.
    const next = defaultTokenFactory();
    api.tokenFactory = () => next;
    api.fault({ method: 'GET', path: '/v1/token', bearer: fingerprint(next) }, { kind: 'status', status: 503 }, 3);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    const live = liveToken(api, w.email);
    expect(r.stderr).toContain(fingerprint(live));
    expect(r.stderr).toMatch(/written everywhere but could not be checked/);
    for (const f of w.fixtures) expect(await w.h.read(f.rel), f.client).toBe(f.content(live));
    const st = await status(w);
    expect(st.code, st.stderr).toBe(0);
    expect(api.regenerateCount).toBe(1);
    expectOneKey(1);
    await expectInvariant(api, w, st);
    expect(st.tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(live), state: 'ok' })]);
  });
});

describe('401 and 403 are permanent: never retried, token marked invalid, nothing written', () => {
  it.each([401, 403])('%i', async (code) => {
    await runCli(['scan'], { env: w.h.env });
    const before = await snapshot(w);
    api.fault(onRegenerate, { kind: 'status', status: code }, 1);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(fingerprint(w.tok));
    expect(r.stderr).toContain(`(${code})`);
    expect(r.stderr).toMatch(/no config was changed/);
    expect(r.stderr).toMatch(/set-token/);
    expect(regenerateRequests(api)).toHaveLength(1);
    expect(await snapshot(w)).toEqual(before);
    const st = await status(w);
    expect(st.code).toBe(2);
    expect(st.tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(w.tok), state: 'invalid' })]);
    // Still exactly one request: status does not retry a refused rotation.
    expect(regenerateRequests(api)).toHaveLength(1);
    // The fake's refusal was injected, so the old token is still the live one, and it is in place.
    await expectInvariant(api, w, st);
  });
});

describe('a new token with characters every format must escape', () => {
  it('is written so every parser (and bash) reads back exactly the live token', async () => {
    const nasty = `ctx_q"b\\s'd$HOME\`x\`#h :c{}[],&*!|;<>%@=é`;
    api.tokenFactory = () => nasty + Math.random().toString(36).slice(2, 8);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const live = liveToken(api, w.email);
    expect(live.startsWith(nasty)).toBe(true);
    const st = await status(w);
    expect(st.code, st.stderr).toBe(0);
    expect(st.tokens.map((t) => t.fingerprint)).toEqual([fingerprint(live)]);

    type Env = { env: Record<string, string> };
    const desktop = parseJsonc(await w.h.read('.config/Claude/claude_desktop_config.json')) as { mcpServers: { certorix: Env } };
    expect(desktop.mcpServers.certorix.env.CERTORIX_API_TOKEN).toBe(live);
    const claude = JSON.parse(await w.h.read('.claude.json')) as { mcpServers: { certorix: Env }; projects: Record<string, { mcpServers: Record<string, { headers: Record<string, string> }> }> };
    expect(claude.mcpServers.certorix.env.CERTORIX_API_TOKEN).toBe(live);
    expect(claude.projects['/home/dev/code/app']!.mcpServers['certorix-remote']!.headers.Authorization).toBe(`Bearer ${live}`);
    const cursorText = await w.h.read('.cursor/mcp.json');
    expect(cursorText.split('\r\n').length).toBe(9); // CRLF kept
    const cursor = JSON.parse(cursorText) as { mcpServers: { certorix: { args: string[] } } };
    expect(cursor.mcpServers.certorix.args.at(-1)).toBe(`Authorization:Bearer ${live}`);
    const vscode = parseJsonc(await w.h.read('.config/Code/User/mcp.json')) as { servers: { certorix: Env } };
    expect(vscode.servers.certorix.env.CERTORIX_API_TOKEN).toBe(live);
    const codex = parseToml(await w.h.read('.codex/config.toml')) as { mcp_servers: { certorix: Env } };
    expect(codex.mcp_servers.certorix.env.CERTORIX_API_TOKEN).toBe(live);
    const cont = parseYaml(await w.h.read('.continue/config.yaml')) as { mcpServers: Array<Env & { name: string }> };
    expect(cont.mcpServers.find((s) => s.name === 'certorix')!.env.CERTORIX_API_TOKEN).toBe(live);
    const bash = execFileSync('bash', ['-c', `PS1=x; source "${w.h.path('.bashrc')}" >/dev/null 2>&1; printf %s "$CERTORIX_API_TOKEN"`], {
      env: { HOME: w.h.home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    }).toString();
    expect(bash).toBe(live);
    expect(tempFilesUnder(w.h.home)).toEqual([]);
    expect(findLeaks([live], (await w.h.stateFiles()).map((f) => f.bytes))).toEqual([]);
    expect(findLeaks([live, JSON.stringify(live).slice(1, -1)], [r.stdout, r.stderr])).toEqual([]);
  });
});
