import { chmod } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { runCli, type TempHome } from '../helpers/home.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { setup } from './helpers.js';
import { Context } from '../../src/context.js';
import { findTokens } from '../../src/scan.js';
import { healRetired } from '../../src/rotation/heal.js';
import { brokerPort } from '../../src/broker/rotation-port.js';
import { BrokerRegistry } from '../../src/broker/registry.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { fingerprint } from '../../src/fingerprint.js';
import { Secret } from '../../src/secret.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

const REL = '.config/Claude/claude_desktop_config.json';
const desktop = FIXTURES.find((f) => f.client === 'claude-desktop')!;

describe('heal of converted entries a client restored in plaintext', () => {
  let h: TempHome;
  let tok: string;
  let converted: string;
  const ctxOf = () => new Context({ pathEnv: { platform: 'linux', home: h.home, env: h.env } });
  beforeAll(async () => {
    ({ h, tok } = await setup(api));
    // A private config, as the heal's safeguards require (see the safeguards' tests below).
    await chmod(h.path(REL), 0o600);
    const r = await runCli(['broker', 'enable'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    converted = await h.read(REL);
  });
  afterAll(() => h.cleanup());

  it('a token of another lineage is left alone: never swallowed into the broker', async () => {
    const other = api.addToken({ email: 'someone@example.com', ageDays: 1 });
    await h.write(REL, desktop.content(other));
    const ctx = ctxOf();
    try {
      await healRetired(ctx, brokerPort, await findTokens(ctx));
    } finally {
      await ctx.close();
    }
    expect(await h.read(REL)).toBe(desktop.content(other));
  });

  it('the current token is converted back, byte for byte as enable wrote it', async () => {
    await h.write(REL, desktop.content(tok));
    const ctx = ctxOf();
    try {
      await healRetired(ctx, brokerPort, await findTokens(ctx));
      expect(await h.read(REL)).toBe(converted);
      expect(ctx.store.listEvents().some((e) => e.type === 'healed' && e.files.includes(h.path(REL)))).toBe(true);
    } finally {
      await ctx.close();
    }
  });

  it('a retired token of the lineage (a copy from before a rotation) is converted back too, and the dead token is gone', async () => {
    const ctx = ctxOf();
    const newTok = 'ctx_rotated_' + 'R'.repeat(32);
    try {
      // What a rotation does: successor recorded, slot moved, new token stored.
      const reg = new BrokerRegistry(ctx.store);
      const now = new Date().toISOString();
      ctx.store.recordSuccessor(fingerprint(tok), fingerprint(newTok), {}, now);
      const [slot] = reg.moveSlots(fingerprint(tok), fingerprint(newTok), now);
      await new FileTokenStore(ctx.paths.dir).write(slot!, new Secret(newTok));
      await h.write(REL, desktop.content(tok));
      await healRetired(ctx, brokerPort, await findTokens(ctx));
      const text = await h.read(REL);
      expect(text).toBe(converted);
      expect(text).not.toContain(tok);
    } finally {
      await ctx.close();
    }
  });

  it('without a daemon, "broker enable" converts a restored entry again (its old record replaced)', async () => {
    const newTok = 'ctx_rotated_' + 'R'.repeat(32); // the current token after the previous test
    await h.write(REL, desktop.content(newTok));
    const r = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { converted: Array<{ path: string }> }).converted.map((c) => c.path)).toEqual([h.path(REL)]);
    expect(await h.read(REL)).toBe(converted);
    const st = JSON.parse((await runCli(['broker', 'status', '--json'], { env: h.env })).stdout) as { entries: Array<{ path: string; mode: string; state?: string }> };
    expect(st.entries.filter((e) => e.path === h.path(REL))).toEqual([expect.objectContaining({ mode: 'broker-exec', state: 'ok' })]);
  });
});

// The plaintext heal's safeguards, broker side (issue 15, item 10): a converted entry restored
// in a file that is shared (git, readable by others) or with another command is never
// converted back, since a wrapper hands every later token to what the entry runs.
describe('broker heal safeguards', () => {
  const PROJECT = 'code/app/.mcp.json';
  const entry = (command: string, t: string, indent = 2) => JSON.stringify({ mcpServers: { certorix: { command, args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: t } } } }, null, indent) + '\n';

  /** A home with one project file converted by `broker enable`, then its token rotated (retired). */
  async function converted(mode: number, git: boolean): Promise<{ h: TempHome; tok: string; next: string; file: string; text: string }> {
    const { makeHome } = await import('../helpers/home.js');
    const h = await makeHome(api.url);
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, broker: { store: 'file' }, extraConfigs: ['~/code/*/.mcp.json'] });
    const tok = api.addToken({ email: `heal-${Math.random().toString(36).slice(2)}@example.com`, ageDays: 5 });
    const file = await h.write(PROJECT, entry('npx', tok), mode);
    if (git) {
      const { execFileSync } = await import('node:child_process');
      const dir = h.path('code/app');
      execFileSync('git', ['init', '-q', dir]);
      execFileSync('git', ['-C', dir, 'add', '.mcp.json']);
    }
    expect((await runCli(['broker', 'enable'], { env: h.env })).code).toBe(0);
    const rot = await runCli(['rotate', '--json'], { env: h.env });
    expect(rot.code, rot.stderr).toBe(0);
    const next = (JSON.parse(rot.stdout) as { rotations: Array<{ newFingerprint: string }> }).rotations[0]!.newFingerprint;
    return { h, tok, next, file, text: await h.read(PROJECT) };
  }

  async function heal(h: TempHome) {
    const ctx = new Context({ pathEnv: { platform: 'linux', home: h.home, env: h.env } });
    try {
      return await healRetired(ctx, brokerPort, await findTokens(ctx));
    } finally {
      await ctx.close();
    }
  }

  it('a git-tracked 0644 project file restored with a retired token and command evil.sh: not converted back, no token written, refusal says why', async () => {
    const { h, tok, file, text } = await converted(0o644, true);
    try {
      expect(text).not.toContain(tok);
      const planted = entry('./evil.sh', tok);
      await h.write(PROJECT, planted);
      const out = await heal(h);
      expect(await h.read(PROJECT)).toBe(planted);
      const r = out.refused.find((x) => x.file === file);
      expect(r?.reasons).toEqual(expect.arrayContaining(['in-git', 'readable-by-others']));
      expect(r?.message).toContain(fingerprint(tok));
      expect(out.healed).toEqual([]);
    } finally {
      await h.cleanup();
    }
  });

  it('a private file outside git restored with another command: not converted back, and the plaintext heal does not give it the current token either', async () => {
    const { h, tok, file } = await converted(0o600, false);
    try {
      const planted = entry('/tmp/evil.sh', tok);
      await h.write(PROJECT, planted);
      const out = await heal(h);
      expect(await h.read(PROJECT)).toBe(planted);
      const r = out.refused.find((x) => x.file === file);
      expect(r?.reasons).toEqual(['launch-changed']);
      expect(r?.message).toContain('runs "/tmp/evil.sh" instead of "npx"');
      expect(r?.fix).toContain('broker enable');
      expect(out.healed).toEqual([]);
    } finally {
      await h.cleanup();
    }
  });

  it('the same entry restored with other formatting (same command, args, env) in a private file is converted back; a 0644 one only after chmod 600', async () => {
    const { h, tok } = await converted(0o600, false);
    const isWrapper = (t: string) => {
      const e = (JSON.parse(t) as { mcpServers: { certorix: { args: string[]; env: Record<string, string> } } }).mcpServers.certorix;
      return !t.includes(tok) && e.args.includes('exec') && e.args.slice(e.args.indexOf('--') + 1).join(' ') === 'npx -y @certorix/mcp-server' && e.env.CERTORIX_API_TOKEN === undefined;
    };
    try {
      await h.write(PROJECT, entry('npx', tok, 4));
      await heal(h);
      expect(isWrapper(await h.read(PROJECT))).toBe(true);
      await h.write(PROJECT, entry('npx', tok, 4), 0o644);
      let out = await heal(h);
      expect(out.refused.map((x) => x.reasons)).toEqual([['readable-by-others']]);
      expect(out.refused[0]!.fix).toContain('chmod 600');
      expect(await h.read(PROJECT)).toBe(entry('npx', tok, 4));
      await chmod(h.path(PROJECT), 0o600);
      out = await heal(h);
      expect(out.refused).toEqual([]);
      expect(isWrapper(await h.read(PROJECT))).toBe(true);
    } finally {
      await h.cleanup();
    }
  });
});
