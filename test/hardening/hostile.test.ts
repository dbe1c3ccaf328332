/**
 * Issue 9 §3: one hostile or huge config cannot stop the tool. A deeply nested JSON file,
 * a YAML alias bomb and a 10 MB config sit beside real configs: `scan` stays fast and
 * reports every other token, `rotate`, `revoke-now` and `doctor` still work, the daemon starts; and a
 * memory cap on the spawned process proves the big file is not parsed into a giant tree.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { runCli } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { fingerprint } from '../../src/fingerprint.js';
import { expectInvariant, FAST_SETTINGS, liveToken, makeWorld, status, uniqueEmail, type World } from './helpers.js';

let api: FakeCertorix;
let w: World | undefined;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});
afterEach(async () => {
  await w?.h.cleanup();
  w = undefined;
});

const DEEP = '.codeium/windsurf/mcp_config.json';
const BOMB = '.config/goose/config.yaml';
const HUGE = '.gemini/settings.json';
const LOCAL = 'proj/.mcp.json';

function bomb(): string {
  let text = 'lol0: &lol0 [' + Array(300).fill('"lol"').join(', ') + ']\n';
  for (let i = 1; i < 9; i++) text += `lol${i}: &lol${i} [` + Array(300).fill(`*lol${i - 1}`).join(', ') + ']\n';
  return text;
}

const localServer = (t: string) => `${JSON.stringify({ mcpServers: { playwright: { type: 'http', url: 'http://127.0.0.1:8931/mcp', headers: { Authorization: `Bearer ${t}` } } } }, null, 2)}\n`;

describe('hostile files beside real ones', () => {
  it('scan, rotate, revoke-now, doctor and the daemon all keep working; every other token is reported', async () => {
    w = await makeWorld(api, { settings: { ...FAST_SETTINGS, extraConfigs: [`~/${LOCAL}`], mcpHosts: ['127.0.0.1'] } });
    const h = w.h;
    const email2 = uniqueEmail('local');
    const tok2 = api.addToken({ email: email2, role: 'editor', ageDays: 5 });
    await h.write(DEEP, '['.repeat(6000) + ']'.repeat(6000));
    await h.write(BOMB, bomb());
    // 10 MB of numbers: about 760 MB once parsed into a tree, before the bound.
    await h.write(HUGE, '{"a":[' + Array(5_000_000).fill('1').join(',') + ']}');
    await h.write(LOCAL, localServer(tok2));
    // A heap far below what parsing the big file would take: it must be refused, not parsed.
    const env = { ...h.env, NODE_OPTIONS: '--max-old-space-size=160' };

    const t0 = Date.now();
    const scan = await runCli(['scan', '--json'], { env, timeoutMs: 30_000 });
    const ms = Date.now() - t0;
    expect(scan.code, scan.stderr).toBe(2); // the broken files are reported...
    expect(ms).toBeLessThan(10_000);
    const doc = JSON.parse(scan.stdout) as { configs: Array<{ path: string; status: string; error?: string; tokens: string[] }>; tokens: Array<{ fingerprint: string }> };
    const byPath = new Map(doc.configs.map((c) => [c.path, c]));
    expect(byPath.get(h.path(DEEP))?.error).toMatch(/nested 6000 levels deep/);
    expect(byPath.get(h.path(HUGE))?.error).toMatch(/too large: 9\.5 MB, more than the 4\.0 MB/);
    expect(byPath.get(h.path(BOMB))).toMatchObject({ status: 'ok', tokens: [] });
    expect(scan.stderr).toContain(h.path(DEEP));
    expect(scan.stderr).toContain(h.path(HUGE));
    // ...and everything else is complete: each real config and the mcpHosts header.
    for (const f of w.fixtures) expect(byPath.get(h.path(f.rel))?.tokens, f.client).toEqual([fingerprint(w.tok)]);
    expect(byPath.get(h.path(LOCAL))?.tokens).toEqual([fingerprint(tok2)]);
    expect(doc.tokens.map((t) => t.fingerprint).sort()).toEqual([fingerprint(w.tok), fingerprint(tok2)].sort());

    const rot = await runCli(['rotate', '--json'], { env, timeoutMs: 30_000 });
    expect(rot.code, rot.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
    // The header to the listed host was rotated too, byte for byte.
    expect(await h.read(LOCAL)).toBe(localServer(liveToken(api, email2)));

    const revoke = await runCli(['revoke-now', '--yes', '--json'], { env, timeoutMs: 30_000 });
    expect(revoke.code, revoke.stderr).toBe(0);
    await expectInvariant(api, w, await status(w));
    expect(await h.read(LOCAL)).toBe(localServer(liveToken(api, email2)));

    const doctor = await runCli(['doctor', '--offline', '--json'], { env, timeoutMs: 30_000 });
    expect([0, 2]).toContain(doctor.code);
    expect(doctor.stderr).not.toMatch(/RangeError|call stack|heap/i);
    expect(doctor.stdout + doctor.stderr).toContain(h.path(DEEP));

    const d = spawnDaemon(env);
    try {
      const started = await d.waitFor((l) => l.msg === 'daemon started', 15_000);
      expect(started.tokens).toBe(2);
      expect(d.child.exitCode).toBeNull();
    } finally {
      const stop = await d.stop();
      expect(stop.code, d.raw()).toBe(0);
    }
  }, 90_000);
});
