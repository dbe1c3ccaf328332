/**
 * Shared set-up for the hardening suite: a temp HOME with a few realistic configs holding
 * one account's token, a fresh fake API per test (its fault queue never leaks into the next
 * test), and the invariant every failure case must leave behind.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { FakeCertorix, FakeRequest } from '../fake/certorix.js';
import { FIXTURES, type Fixture } from '../helpers/fixtures.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';

export const REGENERATE = '/v1/token/regenerate';

/** Fast, bounded retries and a short timeout, so a fault case costs well under a second. */
export const FAST_SETTINGS = { requestTimeoutMs: 500, retry: { attempts: 3, baseMs: 5, maxMs: 50 } };

/** A few realistic configs: strict JSON, CRLF, JSONC with comments, TOML, YAML, a shell file. */
export const SOME_CLIENTS = ['claude-desktop', 'claude-code', 'cursor', 'vscode', 'codex', 'continue', 'shell'];
export const SOME: Fixture[] = FIXTURES.filter((f) => SOME_CLIENTS.includes(f.client));

let seq = 0;
export function uniqueEmail(tag: string): string {
  return `${tag}-${process.pid}-${++seq}@example.com`;
}

export interface World {
  h: TempHome;
  email: string;
  /** The token the configs held at the start. */
  tok: string;
  fixtures: Fixture[];
}

export async function makeWorld(api: FakeCertorix, opts: { fixtures?: Fixture[]; settings?: Record<string, unknown>; ageDays?: number } = {}): Promise<World> {
  const h = await makeHome(api.url);
  const email = uniqueEmail('hard');
  const tok = api.addToken({ email, role: 'editor', ageDays: opts.ageDays ?? 100 });
  const fixtures = opts.fixtures ?? SOME;
  for (const f of fixtures) await h.write(f.rel, f.content(tok));
  await h.settings(opts.settings ?? FAST_SETTINGS);
  return { h, email, tok, fixtures };
}

export function liveToken(api: FakeCertorix, email: string): string {
  const live = api.liveTokens(email);
  expect(live, `exactly one live token for ${email}`).toHaveLength(1);
  return live[0]!.token;
}

export function regenerateRequests(api: FakeCertorix, since = 0): FakeRequest[] {
  return api.requests.slice(since).filter((q) => q.path === REGENERATE);
}

/** Snapshot of every fixture's bytes, to prove "untouched". */
export async function snapshot(w: World): Promise<string[]> {
  return Promise.all(w.fixtures.map((f) => w.h.read(f.rel)));
}

/** Temp files our writer names `.<file>.mtr-<pid>-<hex>.tmp`; none may be left behind. */
export function tempFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(d, n);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (/\.mtr-\d+-[0-9a-f]+\.tmp$/.test(n)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export interface StatusRun {
  code: number | null;
  stderr: string;
  tokens: Array<{ fingerprint: string; state: string; locations: Array<{ path: string; client: string }> }>;
}

/**
 * The next command, then `status --json`: `scan --offline` finishes whatever rotation the
 * journal holds (status itself never does: it is offline), then status reports.
 */
export async function status(w: World): Promise<StatusRun> {
  const next = await runCli(['scan', '--offline'], { env: w.h.env });
  const r = await runCli(['status', '--json'], { env: w.h.env });
  const doc = JSON.parse(r.stdout) as { tokens: StatusRun['tokens'] };
  return { code: r.code, stderr: next.stderr + r.stderr, tokens: doc.tokens };
}

/**
 * The invariant of every fault case, checked after the command and one `status` run: no
 * config is left holding a dead token while the live one exists elsewhere. Every fixture
 * holds exactly the account's live token (byte for byte the fixture with that token), no
 * temp file is left, and once no rotation is open the live token rests nowhere in the state
 * directory.
 */
export async function expectInvariant(api: FakeCertorix, w: World, st: StatusRun): Promise<string> {
  const live = liveToken(api, w.email);
  for (const f of w.fixtures) expect(await w.h.read(f.rel), `${f.client} holds the live token`).toBe(f.content(live));
  expect(tempFilesUnder(w.h.home)).toEqual([]);
  if (!st.tokens.some((t) => t.state === 'rotating')) {
    expect(findLeaks([live], (await w.h.stateFiles()).map((f) => f.bytes)), 'live token at rest in the state dir').toEqual([]);
  }
  return live;
}

/** Records when each request reached the fake, without changing the fake. */
export function stampRequests(api: FakeCertorix): WeakMap<FakeRequest, number> {
  const at = new WeakMap<FakeRequest, number>();
  const push = api.requests.push.bind(api.requests);
  api.requests.push = (...items: FakeRequest[]): number => {
    for (const q of items) at.set(q, Date.now());
    return push(...items);
  };
  return at;
}

/** Runs a command as root, or says why it cannot (for skips with a reason). */
export function tryRun(cmd: string, args: string[]): string | null {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return null;
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    return `${cmd} ${args.join(' ')}: ${stderr || (e as Error).message}`;
  }
}
