/**
 * What a fresh `rotate` does before the regenerate call (src/rotation/prepare.ts): the old
 * token checked alive with GET /v1/token (a dead one is reported before any mutation), and
 * every config's temp file opened with the config's mode, so that after the 201 only the
 * writes remain. The built CLI against the fake API, real files in a temp HOME.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/fingerprint.js';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { runCli } from '../helpers/home.js';
import { FAST_SETTINGS, REGENERATE, SOME, liveToken, makeWorld, regenerateRequests, snapshot, status, tempFilesUnder, type World } from '../hardening/helpers.js';

let api: FakeCertorix;
let w: World;
beforeEach(async () => {
  api = await startFakeCertorix();
  w = await makeWorld(api);
  const scan = await runCli(['scan', '--json'], { env: w.h.env });
  expect(scan.code, scan.stderr).toBe(0);
});
afterEach(async () => {
  await api.close();
  await w.h.cleanup();
});

/** Temp files of ours (".<name>.mtr-<pid>-<hex>.tmp") in the fixtures' directories. */
function ourTemps(): Array<{ file: string; mode: number; size: number }> {
  const dirs = new Set(w.fixtures.map((f) => path.dirname(w.h.path(f.rel))));
  return [...dirs].flatMap((d) =>
    readdirSync(d)
      .filter((n) => /\.mtr-\d+-[0-9a-f]+\.tmp$/.test(n))
      .map((n) => {
        const st = statSync(path.join(d, n));
        return { file: path.join(d, n), mode: st.mode & 0o777, size: st.size };
      }),
  );
}

describe('before the regenerate call', () => {
  it('checks the old token with GET /v1/token first, then regenerates, then verifies the new one', async () => {
    const since = api.requests.length;
    const r = await runCli(['rotate', '--json'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const live = liveToken(api, w.email);
    const calls = api.requests.slice(since).map((q) => `${q.method} ${q.path} ${q.bearerFingerprint === fingerprint(w.tok) ? 'old' : q.bearerFingerprint === fingerprint(live) ? 'new' : '?'}`);
    expect(calls).toEqual(['GET /v1/token old', `POST ${REGENERATE} old`, 'GET /v1/token new']);
    for (const f of w.fixtures) expect(await w.h.read(f.rel), f.client).toBe(f.content(live));
    expect(ourTemps()).toEqual([]);
  });

  it('a token that is already dead is reported before any mutation: no regenerate, no journal, nothing written', async () => {
    const before = await snapshot(w);
    api.revoke(w.tok); // "Regenerate" in the web UI, without telling us
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Token ${fingerprint(w.tok)} is already dead`);
    expect(r.stderr).toContain('(401)');
    expect(r.stderr).toMatch(/set-token --fingerprint [0-9a-f]{12}/);
    expect(regenerateRequests(api)).toEqual([]);
    expect(await snapshot(w)).toEqual(before);
    expect(ourTemps()).toEqual([]);
    const st = await status(w);
    expect(st.code).toBe(2);
    expect(st.tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(w.tok), state: 'invalid' })]);
    const hist = await runCli(['history', '--json'], { env: w.h.env });
    expect(JSON.parse(hist.stdout)).toMatchObject({ events: [{ type: 'rotation-refused', fingerprint: fingerprint(w.tok), source: 'manual' }] });
  });

  it('an API that cannot be reached for the check stops the rotation with nothing journaled', async () => {
    const before = await snapshot(w);
    api.fault({ method: 'GET', path: '/v1/token', bearer: fingerprint(w.tok) }, { kind: 'status', status: 503 }, FAST_SETTINGS.retry.attempts);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Could not check token ${fingerprint(w.tok)}`);
    expect(r.stderr).toMatch(/no config was changed/);
    expect(regenerateRequests(api)).toEqual([]);
    expect(await snapshot(w)).toEqual(before);
    expect(api.isLive(w.tok)).toBe(true);
    // No unfinished rotation: status is not "rotating" (exit 2), and the next rotate just works.
    const st = await status(w);
    expect(st.tokens).toEqual([expect.objectContaining({ fingerprint: fingerprint(w.tok), state: 'due' })]);
    const again = await runCli(['rotate'], { env: w.h.env });
    expect(again.code, again.stderr).toBe(0);
  });

  it('every config temp file is already open, with the config mode and no content, while the API answers', async () => {
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'delay', ms: 1500 });
    const modes = new Map(w.fixtures.map((f) => [path.dirname(w.h.path(f.rel)), statSync(w.h.path(f.rel)).mode & 0o777]));
    const child = runCli(['rotate'], { env: w.h.env });
    let seen: ReturnType<typeof ourTemps> = [];
    for (let i = 0; i < 300 && regenerateRequests(api).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(regenerateRequests(api)).toHaveLength(1);
    seen = ourTemps();
    const r = await child;
    expect(r.code, r.stderr).toBe(0);
    // One per config (SOME has one config per directory but the shell file's, sharing HOME).
    expect(seen).toHaveLength(SOME.length);
    for (const t of seen) {
      expect(t.size, t.file).toBe(0);
      expect(t.mode, t.file).toBe(modes.get(path.dirname(t.file)));
    }
    expect(ourTemps()).toEqual([]);
    const live = liveToken(api, w.email);
    for (const f of w.fixtures) expect(await w.h.read(f.rel), f.client).toBe(f.content(live));
  });

  it('a config edited during the call is re-read: the prepared temp file is dropped, the edit kept, none left behind', async () => {
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'delay', ms: 1500 });
    const cursor = w.fixtures.find((f) => f.client === 'cursor');
    if (!cursor) throw new Error('fixture set without cursor');
    const child = runCli(['rotate'], { env: w.h.env });
    for (let i = 0; i < 300 && regenerateRequests(api).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const edited = (await w.h.read(cursor.rel)).replace('{', '{\n  "theme": "dark",');
    await w.h.write(cursor.rel, edited);
    const r = await child;
    expect(r.code, r.stderr).toBe(0);
    const live = liveToken(api, w.email);
    const after = await w.h.read(cursor.rel);
    expect(after).toContain('"theme": "dark"');
    expect(after).toContain(live);
    expect(after).not.toContain(w.tok);
    expect(ourTemps()).toEqual([]);
    expect(tempFilesUnder(w.h.home)).toEqual([]);
  });

  it('a crash after the intent leaves prepared temp files that the next command removes, and finishes the rotation', async () => {
    const r = await runCli(['rotate'], { env: { ...w.h.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'after-intent' } });
    expect(r.code).not.toBe(0);
    expect(ourTemps().length).toBeGreaterThan(0);
    const st = await status(w);
    expect(st.code, st.stderr).toBe(0);
    expect(ourTemps()).toEqual([]);
    const live = liveToken(api, w.email);
    for (const f of w.fixtures) expect(await w.h.read(f.rel), f.client).toBe(f.content(live));
  });
});
