/**
 * Issue 9 §8: `npm start` (the daemon) on a machine with no token says where it looked and
 * what to do next, instead of a bare "tokens: 0".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHome, type TempHome } from './helpers/home.js';
import { spawnDaemon } from './helpers/daemon.js';
import { noTokenAdvice } from '../src/daemon/first-run.js';

describe('no token yet', () => {
  it('the advice lists the catalog paths for this OS (tildified), the extraConfigs patterns, and skips disabled clients', () => {
    const pe = { platform: 'linux' as const, home: '/home/u', env: {} };
    const a = noTokenAdvice(pe, { extraConfigs: ['~/code/*/.mcp.json'], disableClients: ['goose'] });
    expect(a.looked).toContain('~/.claude.json');
    expect(a.looked).toContain('~/.cursor/mcp.json');
    expect(a.looked).toContain('~/.bashrc');
    expect(a.looked).toContain('~/code/*/.mcp.json');
    expect(a.looked).not.toContain('~/.config/goose/config.yaml');
    expect(a.looked.every((p) => p.startsWith('~'))).toBe(true);
    expect(a.msg).toMatch(/CERTORIX_API_TOKEN/);
    expect(a.msg).toMatch(/npm run demo/);
    const mac = noTokenAdvice({ platform: 'darwin', home: '/Users/u', env: {} }, { extraConfigs: [], disableClients: [] });
    expect(mac.looked).toContain('~/Library/Application Support/Claude/claude_desktop_config.json');
  });

  describe('the daemon, spawned in an empty HOME', () => {
    let h: TempHome;
    beforeAll(async () => {
      h = await makeHome('http://127.0.0.1:9');
      await h.settings({ extraConfigs: ['~/code/*/.mcp.json'] });
    });
    afterAll(() => h.cleanup());

    it('says where it looked and what to do next', async () => {
      const d = spawnDaemon(h.env);
      try {
        await d.waitFor((l) => l.msg === 'daemon started', 15_000);
        const advice = await d.waitFor((l) => Array.isArray(l.looked), 5000);
        expect(advice.level).toBe(30);
        expect(advice.msg).toMatch(/no Certorix token found in the \d+ config paths checked/);
        expect(advice.msg).toMatch(/npm run demo/);
        expect(advice.looked).toEqual(expect.arrayContaining(['~/.config/Claude/claude_desktop_config.json', '~/.cursor/mcp.json', '~/code/*/.mcp.json']));
      } finally {
        const stop = await d.stop();
        expect(stop.code, d.raw()).toBe(0);
      }
    });
  });
});
