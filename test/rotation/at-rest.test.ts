import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { holdReadTransaction } from '../helpers/sqlite-reader.js';
import { fingerprint } from '../../src/fingerprint.js';

/**
 * Issue 9 §7: nothing at rest, even under concurrency. The daemon holds the database open
 * and a third process sits in a read transaction (pinning an old snapshot, so the first
 * checkpoint attempts come back busy) while a rotation and a set-token run through the
 * daemon. Afterwards no state file may hold a live token, and the database files (main,
 * WAL, SHM: the journal lives in the main file) hold neither the old nor the new one.
 */

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome;
let d: SpawnedDaemon | undefined;
afterEach(async () => {
  await d?.stop('SIGKILL');
  d = undefined;
  await h.cleanup();
});

const cursor = (t: string) => JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: t } } } }, null, 2) + '\n';

async function stateLeaks(anywhere: string[], inDatabase: string[]): Promise<{ anywhere: string[]; database: string[]; files: string[] }> {
  const files = await h.stateFiles();
  const db = files.filter((f) => /rotator\.db(-wal|-shm)?$/.test(f.file));
  return {
    anywhere: findLeaks(anywhere, files.map((f) => f.bytes)),
    database: findLeaks(inDatabase, db.map((f) => f.bytes)),
    files: files.map((f) => path.relative(h.stateDir, f.file)).sort(),
  };
}

describe('nothing at rest with the daemon running and another reader', () => {
  it('a rotation, then a set-token whose old token still works, leave no token in any state file', async () => {
    h = await makeHome(api.url);
    const email = 'at-rest@example.com';
    const old = api.addToken({ email, role: 'editor', ageDays: 20 });
    await h.write('.cursor/mcp.json', cursor(old));
    await h.write('.gemini/settings.json', cursor(old));
    d = spawnDaemon(h.env);
    await d.waitFor((l) => l.msg === 'daemon started', 15_000);
    const db = path.join(h.stateDir, 'rotator.db');

    // 1. rotate, through the daemon's socket, while another process pins a snapshot.
    let reader = await holdReadTransaction(db, 2_500);
    const r = await runCli(['rotate'], { env: h.env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    await reader.released;
    const fresh = api.liveTokens(email)[0]!.token;
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(fresh));
    expect(await d.waitFor((l) => l.msg === 'rotation finished' && l.newFingerprint === fingerprint(fresh))).toBeTruthy();
    // The daemon did it (one process writes), and its checkpoint finished despite the reader.
    expect(d.lines().some((l) => String(l.msg).startsWith('the state database stayed busy'))).toBe(false);
    let leaks = await stateLeaks([fresh], [old, fresh]);
    expect(leaks.files).toEqual(expect.arrayContaining(['rotator.db']));
    expect(leaks.anywhere).toEqual([]);
    expect(leaks.database).toEqual([]);

    // 2. set-token with a token made in the web UI while `fresh` keeps working.
    const adopted = api.addToken({ email, role: 'editor' });
    reader = await holdReadTransaction(db, 2_500);
    const s = await runCli(['set-token'], { env: h.env, input: adopted, timeoutMs: 30_000 });
    expect(s.code, s.stderr).toBe(0);
    await reader.released;
    expect(api.isLive(fresh)).toBe(true);
    expect(s.stderr).toContain(`note: token ${fingerprint(fresh)}`);
    expect(await h.read('.cursor/mcp.json')).toBe(cursor(adopted));
    leaks = await stateLeaks([fresh, adopted], [old, fresh, adopted]);
    expect(leaks.files.filter((f) => f.startsWith('backups'))).not.toEqual([]);
    expect(leaks.anywhere).toEqual([]);
    expect(leaks.database).toEqual([]);
    expect(findLeaks([old, fresh, adopted], [r.stdout, r.stderr, s.stdout, s.stderr, d.raw()])).toEqual([]);
  });
});
