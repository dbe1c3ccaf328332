import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { CLI, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { locateTokens } from '../../src/clients/formats.js';
import { CRASH_POINTS } from '../../src/rotation/failpoints.js';
import { clientById, formatForPath } from '../../src/clients/catalog.js';


/**
 * Kills a real rotation with SIGKILL at each journal step and at random moments, then runs
 * `scan --offline` (which finishes what the journal holds) and `status` and checks the invariant: exactly one
 * live token for the account, every config holding it, every file parsing, no temp file.
 * CRASH_ROUNDS sets the number of random rounds (npm run test:crash runs many).
 */
const RANDOM_ROUNDS = Number(process.env.CRASH_ROUNDS ?? 6);

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let seq = 0;
const landed: string[] = [];

async function round(kill: { point?: string; afterMs?: number }): Promise<void> {
  const email = `crash${++seq}@example.com`;
  const h: TempHome = await makeHome(api.url);
  const tok = api.addToken({ email, ageDays: 10 });
  for (const f of FIXTURES) await h.write(f.rel, f.content(tok));
  try {
    const env = kill.point ? { ...h.env, MCP_TOKEN_ROTATOR_CRASH_AT: kill.point } : h.env;
    const child = spawn(process.execPath, [CLI, 'rotate'], { env, stdio: 'ignore' });
    if (kill.afterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
    landed.push(`${kill.point ?? `random ${kill.afterMs}ms`}: ${signal ?? `exit ${code}`} at journal step ${journalStep(h)}`);

    // The next command finishes it (status is offline: it only reports).
    await runCli(['scan', '--offline'], { env: h.env });
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code, `status after ${JSON.stringify(kill)}: ${st.stderr}`).toBe(0);
    const live = api.liveTokens(email);
    expect(live, 'exactly one live token for the account').toHaveLength(1);
    const current = live[0]!.token;
    for (const f of FIXTURES) {
      const text = readFileSync(h.path(f.rel), 'utf8');
      const format = f.client === 'shell' ? formatForPath(f.rel) : clientById(f.client).format;
      const res = locateTokens(text, format);
      expect(res.errors, f.rel).toEqual([]);
      expect(res.sites.length, f.rel).toBeGreaterThan(0);
      for (const s of res.sites) expect(s.token === current, `${f.rel} holds the live token`).toBe(true);
      expect(text, f.rel).toBe(f.content(current));
    }
    expect(tempFiles(h.home)).toEqual([]);
  } finally {
    await h.cleanup();
  }
}

function journalStep(h: TempHome): string {
  try {
    const db = new Database(path.join(h.stateDir, 'rotator.db'), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT step, files FROM rotations ORDER BY id DESC LIMIT 1').get() as { step: string; files: string } | undefined;
      if (!row) return 'none (before the intent)';
      const files = JSON.parse(row.files) as Array<{ written: boolean }>;
      return `${row.step} (${files.filter((f) => f.written).length}/${files.length} files recorded written)`;
    } finally {
      db.close();
    }
  } catch {
    return 'none (no database yet)';
  }
}

function tempFiles(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...tempFiles(p));
    else if (/\.mtr-\d+-[0-9a-f]+\.tmp$/.test(n)) out.push(p);
  }
  return out;
}

describe('crash at every journal step', () => {
  it.each([...CRASH_POINTS, 'after-file-written:4'])('SIGKILL %s, then any command finishes the rotation', async (point) => {
    await round({ point });
  });
});

describe('crash at random moments', () => {
  it(`survives ${RANDOM_ROUNDS} random SIGKILLs`, async () => {
    for (let i = 0; i < RANDOM_ROUNDS; i++) await round({ afterMs: 150 + Math.floor(Math.random() * 750) });
    console.log(`crash rounds (${landed.length}):\n  ${landed.join('\n  ')}`);
  }, 30_000 + RANDOM_ROUNDS * 5_000);
});
