import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, runCli } from '../helpers/home.js';
import { ALL, REMOTE, setup, snapshot, type StatusDoc } from './helpers.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});
const setupHome = () => setup(api);

describe('a crash mid-enable loses no token', () => {
  for (const point of ['broker-after-store', 'broker-after-entries-recorded:4', 'broker-after-file-written:6']) {
    it(`SIGKILL at ${point}`, async () => {
      const { h, tok } = await setupHome();
      try {
        const before = await snapshot(h);
        const r = await runCli(['broker', 'enable'], { env: { ...h.env, MCP_TOKEN_ROTATOR_CRASH_AT: point } });
        expect(r.code).toBeNull(); // killed
        // Each config old or new; wherever it is not in a config, the token is in the store.
        const store = JSON.parse(await h.read('.local/state/mcp-token-rotator/broker-tokens.json')) as Record<string, string>;
        expect(Object.values(store)).toEqual([tok]);
        let converted = 0;
        for (const f of ALL) {
          const text = await h.read(f.rel);
          if (text === before.get(f.rel)) continue;
          converted++;
          expect(text).toContain('"exec"');
        }
        expect(converted).toBeLessThan(ALL.length);
        // The next run reconciles and finishes; disable then gives back the original bytes.
        const again = await runCli(['broker', 'enable'], { env: h.env });
        expect(again.code, again.stderr).toBe(0);
        for (const f of ALL) if (f.client !== 'shell' && !REMOTE.has(f.client)) expect(findLeaks([tok], [await h.read(f.rel)]), f.client).toEqual([]);
        const st = JSON.parse((await runCli(['broker', 'status', '--json'], { env: h.env })).stdout) as StatusDoc;
        expect(st.entries.filter((e) => e.mode === 'broker-exec' || e.mode === 'broker-headers')).toHaveLength(ALL.length - 3 + 1);
        expect(st.entries.every((e) => e.mode === 'plaintext' || e.state === 'ok')).toBe(true);
        expect((await runCli(['broker', 'disable'], { env: h.env })).code).toBe(0);
        expect(await snapshot(h)).toEqual(before);
      } finally {
        await h.cleanup();
      }
    });
  }
});


describe('a crash mid-disable loses no token', () => {
  it('SIGKILL after the third file is back in plaintext; the next disable finishes', async () => {
    const { h, tok } = await setupHome();
    try {
      const before = await snapshot(h);
      expect((await runCli(['broker', 'enable'], { env: h.env })).code).toBe(0);
      const r = await runCli(['broker', 'disable'], { env: { ...h.env, MCP_TOKEN_ROTATOR_CRASH_AT: 'broker-after-file-written:3' } });
      expect(r.code).toBeNull();
      const store = JSON.parse(await h.read('.local/state/mcp-token-rotator/broker-tokens.json')) as Record<string, string>;
      expect(Object.values(store)).toEqual([tok]);
      let restored = 0;
      for (const f of ALL) if ((await h.read(f.rel)) === before.get(f.rel) && f.client !== 'shell' && !REMOTE.has(f.client)) restored++;
      expect(restored).toBe(3);
      const again = await runCli(['broker', 'disable', '--json'], { env: h.env });
      expect(again.code, again.stderr).toBe(0);
      expect(await snapshot(h)).toEqual(before);
      const st = JSON.parse((await runCli(['broker', 'status', '--json'], { env: h.env })).stdout) as StatusDoc;
      expect(st.entries.every((e) => e.mode === 'plaintext')).toBe(true);
    } finally {
      await h.cleanup();
    }
  });
});
