/**
 * Settings `metricsFile` (issue 16 item 11) with the real daemon: the file is there after
 * start (age, state, last check), follows a rotation made through the daemon (new
 * fingerprint, last successful rotation) and a failed one (failures counter, state), is
 * replaced atomically (0644, no temp file left), and holds no token value.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';
import { parseSettings } from '../../src/config/settings.js';

let api: FakeCertorix;
let h: TempHome;
let d: SpawnedDaemon | undefined;
const tokens: string[] = [];

beforeAll(async () => {
  api = await startFakeCertorix();
  h = await makeHome(api.url);
});
afterAll(async () => {
  await d?.stop('SIGKILL');
  await h.cleanup();
  await api.close();
});

/** Polls the metrics file until `pred` holds (the daemon writes it asynchronously). */
async function waitForMetrics(file: string, pred: (text: string) => boolean, what: string): Promise<string> {
  let text = '';
  for (let i = 0; i < 150; i++) {
    text = await readFile(file, 'utf8').catch(() => '');
    if (pred(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`metrics file never showed ${what}; it holds:\n${text}\ndaemon:\n${d?.raw() ?? ''}`);
}

describe('settings metricsFile', () => {
  it('must be an absolute path (or ~/...)', () => {
    expect(parseSettings('{"metricsFile": "metrics.prom"}').errors.join()).toMatch(/metricsFile/);
    expect(parseSettings('{"metricsFile": "~/textfile/mtr.prom"}').errors).toEqual([]);
    expect(parseSettings('{"metricsFile": "/var/lib/node_exporter/textfile/mtr.prom"}').settings?.metricsFile).toBe('/var/lib/node_exporter/textfile/mtr.prom');
  });

  it('the daemon keeps the file: at start, after a rotation, after a failed one', async () => {
    const old = api.addToken({ email: 'm@example.com', role: 'editor', ageDays: 95 });
    tokens.push(old);
    await h.write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', env: { CERTORIX_API_TOKEN: old } } } }, null, 2));
    mkdirSync(h.path('textfile'));
    const file = h.path('textfile/mcp-token-rotator.prom');
    await h.settings({ retry: { attempts: 2, baseMs: 5, maxMs: 20 }, requestTimeoutMs: 2000, broker: { store: 'file' }, metricsFile: '~/textfile/mcp-token-rotator.prom' });
    d = spawnDaemon(h.env);
    const fp = fingerprint(old);

    // Start: age and state, then the start check's answer.
    const started = await waitForMetrics(file, (t) => t.includes(`mcp_token_last_check_timestamp_seconds{fingerprint="${fp}",provider="certorix"}`), 'the start check');
    expect(started).toContain(`mcp_token_age_days{fingerprint="${fp}",provider="certorix"} 95\n`);
    expect(started).toContain(`mcp_token_state{fingerprint="${fp}",provider="certorix",state="due"} 1\n`);
    expect(started).toContain('mcp_token_rotator_rotation_failures_total 0\n');
    expect(started).not.toMatch(/^mcp_token_rotator_last_rotation_success_timestamp_seconds \d/m);
    expect((await stat(file)).mode & 0o777).toBe(0o644);

    // A rotation through the daemon.
    const r = await runCli(['rotate', '--fingerprint', fp], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const fresh = api.liveTokens('m@example.com')[0]!.token;
    tokens.push(fresh);
    const nfp = fingerprint(fresh);
    const rotated = await waitForMetrics(file, (t) => t.includes(`fingerprint="${nfp}"`), 'the new fingerprint');
    expect(rotated).not.toContain(`fingerprint="${fp}"`);
    expect(rotated).toContain(`mcp_token_state{fingerprint="${nfp}",provider="certorix",state="ok"} 1\n`);
    const last = /^mcp_token_rotator_last_rotation_success_timestamp_seconds (\d+)$/m.exec(rotated);
    expect(Number(last?.[1])).toBeGreaterThan(Date.now() / 1000 - 120);

    // A rotation the API refuses: counted, and the token shown invalid.
    api.fault({ method: 'POST', path: '/v1/token/regenerate' }, { kind: 'status', status: 403 });
    const failed = await runCli(['rotate', '--fingerprint', nfp], { env: h.env });
    expect(failed.code).toBe(2);
    const after = await waitForMetrics(file, (t) => t.includes('mcp_token_rotator_rotation_failures_total 1\n'), 'the failure');
    expect(after).toContain(`mcp_token_state{fingerprint="${nfp}",provider="certorix",state="invalid"} 1\n`);

    // Atomic replacement: nothing but the file in its directory; no token value in it.
    expect(await readdir(h.path('textfile'))).toEqual(['mcp-token-rotator.prom']);
    expect(findLeaks(tokens, [after, rotated, started])).toEqual([]);
  });
});
