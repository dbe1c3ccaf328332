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
