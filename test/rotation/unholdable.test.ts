import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';

/**
 * Issue 9 §7: a minted token that some config cannot hold. The rotation writes what can be
 * written, reports the rest with the fix, ends in a terminal journal state (tokens erased),
 * and every other command keeps working.
 */

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

const cursor = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';
const dotenv = (t: string) => `# app settings\nCERTORIX_API_TOKEN=${t}\nPORT=3000\n`;

async function withMinted<T>(make: () => string, fn: () => Promise<T>): Promise<T> {
  const prev = api.tokenFactory;
  api.tokenFactory = make;
  try {
    return await fn();
  } finally {
    api.tokenFactory = prev;
  }
}

async function setup(): Promise<{ email: string; old: string }> {
  h = await makeHome(api.url);
  const email = `hold${++seq}@example.com`;
  const old = api.addToken({ email, role: 'editor', ageDays: 10 });
  await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, extraConfigs: ['~/code/*/.env'] });
  await h.write('.cursor/mcp.json', cursor(old));
  await h.write('code/app/.env', dotenv(old));
  return { email, old };
}

/** The database files (main, WAL, SHM) hold no token; a backup may hold only a dead one. */
async function expectNothingAtRest(dead: string[], live: string[]): Promise<void> {
  const files = await h.stateFiles();
  const db = files.filter((f) => /rotator\.db(-wal|-shm)?$/.test(f.file));
  expect(db.length).toBeGreaterThan(0);
  expect(findLeaks([...dead, ...live], db.map((f) => f.bytes))).toEqual([]);
  expect(findLeaks(live, files.map((f) => f.bytes))).toEqual([]);
}

interface Status {
  tokens: Array<{ fingerprint: string; state: string; locations: Array<{ path: string }> }>;
}

describe('a minted token that some config cannot hold', () => {
  it('no config can hold it (a tab): the rotation ends failed, the old token is shown invalid, and set-token recovers', async () => {
    const { email, old } = await setup();
    const r = await withMinted(() => `ctx_${randomBytes(8).toString('hex')}\t${randomBytes(8).toString('hex')}`, () => runCli(['rotate'], { env: h.env }));
    expect(r.code).toBe(2);
    expect(api.isLive(old)).toBe(false);
    const minted = api.liveTokens(email)[0]!.token;
    expect(minted).toContain('\t');
    expect(r.stderr).toMatch(/no config can hold it/);
    expect(r.stderr).toContain(h.path('code/app/.env'));
    expect(r.stderr).toContain(`set-token --fingerprint ${fingerprint(old)}`);
    // Nothing was written; nothing holds either token at rest.
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(old));
    expect(await h.read('code/app/.env')).toBe(dotenv(old));
    await expectNothingAtRest([old], [minted]);
    expect(findLeaks([old, minted], [r.stdout, r.stderr])).toEqual([]);

    // Terminal: no command resumes it, and status tells the truth (invalid, not rotating).
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code).toBe(2);
    expect(st.stderr).not.toMatch(/interrupted rotation/);
    expect((JSON.parse(st.stdout) as Status).tokens.map((t) => [t.fingerprint, t.state])).toEqual([[fingerprint(old), 'invalid']]);
    expect((await runCli(['history', '--json'], { env: h.env })).code).toBe(0);
    expect((await runCli(['scan', '--offline'], { env: h.env })).code).toBe(0);

    // The way out the message gives: a token from the web UI, piped to set-token.
    const fresh = api.addToken({ email, role: 'editor' });
    const fix = await runCli(['set-token', '--fingerprint', fingerprint(old)], { env: h.env, input: fresh });
    expect(fix.code, fix.stderr).toBe(0);
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(fresh));
    expect(await h.read('code/app/.env')).toBe(dotenv(fresh));
    expect((await runCli(['status'], { env: h.env })).code).toBe(0);
  });

  it('a .env line cannot hold it (every quote character): the other configs get it, the .env file is reported, the rotation finishes', async () => {
    const { email, old } = await setup();
    const r = await withMinted(() => `ctx_${randomBytes(6).toString('hex')}'"\`\\$${randomBytes(6).toString('hex')}`, () => runCli(['rotate', '--json'], { env: h.env }));
    expect(api.isLive(old)).toBe(false);
    const minted = api.liveTokens(email)[0]!.token;
    // Written where it can be; the .env file is left as it was, and named with the fix.
    expect(JSON.parse(await h.read('.cursor/mcp.json'))).toEqual(JSON.parse(cursor(minted)));
    expect(await h.read('code/app/.env')).toBe(dotenv(old));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${h.path('code/app/.env')} cannot hold the new token ${fingerprint(minted)}`);
    expect(r.stderr).toContain(`rotate --fingerprint ${fingerprint(minted)}`);
    const doc = JSON.parse(r.stdout) as { rotations: Array<{ status: string; newFingerprint: string; files: Array<{ path: string }> }> };
    expect(doc.rotations).toEqual([expect.objectContaining({ status: 'rotated', newFingerprint: fingerprint(minted), files: [expect.objectContaining({ path: h.path('.cursor/mcp.json') })] })]);
    await expectNothingAtRest([old], [minted]);
    expect(findLeaks([old, minted], [r.stdout, r.stderr])).toEqual([]);

    // Finished: other commands run normally, and the next rotation (an ordinary token) works.
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code).toBe(0);
    expect((JSON.parse(st.stdout) as Status).tokens.map((t) => [t.fingerprint, t.state])).toEqual([[fingerprint(minted), 'ok']]);
    const again = await runCli(['rotate', '--fingerprint', fingerprint(minted)], { env: h.env });
    expect(again.code, again.stderr).toBe(0);
    const next = api.liveTokens(email)[0]!.token;
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(next));
  });

  it('set-token with a token no config can hold changes nothing, ends its journal row, and leaves the old token as it was', async () => {
    const { email, old } = await setup();
    const odd = api.addToken({ email, role: 'editor', token: `ctx_${randomBytes(6).toString('hex')}\${x}${randomBytes(6).toString('hex')}` });
    const r = await runCli(['set-token'], { env: h.env, input: odd });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot be written into any config holding ${fingerprint(old)}; nothing was changed`);
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(old));
    expect(await h.read('code/app/.env')).toBe(dotenv(old));
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code).toBe(0);
    expect((JSON.parse(st.stdout) as Status).tokens.map((t) => [t.fingerprint, t.state])).toEqual([[fingerprint(old), 'ok']]);
    await expectNothingAtRest([old], [odd]);
  });
});
