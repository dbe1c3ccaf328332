import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, runCli, type TempHome } from '../helpers/home.js';
import { FIXTURES, GITHUB_TOKEN } from '../helpers/fixtures.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { fingerprint } from '../../src/fingerprint.js';
import { Store } from '../../src/store/store.js';
import { BrokerRegistry } from '../../src/broker/registry.js';
import { FileTokenStore } from '../../src/broker/store.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});
const setupHome = () => setup(api);

import { ALL, REMOTE, UNIT, fakeSystemctl, setup, snapshot, type StatusDoc } from './helpers.js';

describe('broker enable / status / disable on all 13 clients', () => {
  let h: TempHome;
  let tok: string;
  let before: Map<string, string>;
  beforeAll(async () => {
    ({ h, tok } = await setupHome());
    before = await snapshot(h);
  });
  afterAll(() => h.cleanup());

  it('--dry-run plans and writes nothing', async () => {
    const r = await runCli(['broker', 'enable', '--dry-run', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { dryRun: boolean; converted: Array<{ client: string; mode: string }>; plaintext: Array<{ client: string; reason: string }> };
    expect(doc.dryRun).toBe(true);
    expect(new Set(doc.converted.map((c) => c.client))).toEqual(new Set(ALL.map((f) => f.client).filter((c) => c !== 'shell' && !REMOTE.has(c))));
    expect(await snapshot(h)).toEqual(before);
    const files = await h.stateFiles();
    expect(files.map((f) => path.basename(f.file))).not.toContain('broker-tokens.json');
  });

  it('enable converts every stdio entry, the bridge and the Claude Code remote entry; endpoint entries wait for the daemon', async () => {
    const r = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { converted: Array<{ client: string; mode: string }>; plaintext: Array<{ client: string; reason: string }> };
    const modes = doc.converted.map((c) => `${c.client}:${c.mode}`).sort();
    expect(modes).toContain('claude-code:broker-headers');
    expect(modes).toContain('cursor:broker-exec');
    for (const f of ALL) {
      const text = await h.read(f.rel);
      if (f.client === 'shell' || REMOTE.has(f.client)) {
        expect(text, f.client).toBe(before.get(f.rel));
        continue;
      }
      expect(findLeaks([tok], [text]), `${f.client} still holds the token`).toEqual([]);
      expect(text, f.client).toContain('"exec"');
      expect(text, f.client).toContain(process.execPath);
    }
    for (const c of REMOTE) expect(doc.plaintext.find((p) => p.client === c)?.reason).toMatch(/install-service/);
    expect(doc.plaintext.find((p) => p.client === 'shell')?.reason).toMatch(/shell/);
    // Other secrets beside ours are untouched.
    expect(await h.read('.config/Claude/claude_desktop_config.json')).toContain(GITHUB_TOKEN);
    expect(findLeaks([tok], [r.stdout, r.stderr])).toEqual([]);
  });

  it('a unit file the service manager does not report active (a failed install-service) does not count: remote entries stay plaintext', async () => {
    await h.write(UNIT, '[Unit]\nDescription=test stand-in\n');
    await fakeSystemctl(h, 'failed');
    const r = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { converted: Array<{ client: string; mode: string }>; plaintext: Array<{ client: string; reason: string }> };
    expect(doc.converted.filter((c) => c.mode === 'broker-endpoint')).toEqual([]);
    for (const c of REMOTE) expect(doc.plaintext.find((p) => p.client === c)?.reason).toMatch(/install-service/);
    expect(await h.read('.codeium/windsurf/mcp_config.json')).toBe(before.get('.codeium/windsurf/mcp_config.json'));
    expect(await readFile(h.path('systemctl.log'), 'utf8')).toContain('--user is-active mcp-token-rotator.service');
  });

  it('remote entries go to the local endpoint only while the daemon serves it: an active service alone is not enough (no URL of a port nothing answers)', async () => {
    await h.write(UNIT, '[Unit]\nDescription=test stand-in\n');
    await fakeSystemctl(h, 'active');
    const silent = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(silent.code, silent.stderr).toBe(0);
    const sdoc = JSON.parse(silent.stdout) as { converted: unknown[]; plaintext: Array<{ client: string; reason: string }> };
    expect(sdoc.converted).toEqual([]);
    for (const c of REMOTE) expect(sdoc.plaintext.find((p) => p.client === c)?.reason).toMatch(/does not answer.*systemctl --user start/);
    expect(await h.read('.codeium/windsurf/mcp_config.json')).toBe(before.get('.codeium/windsurf/mcp_config.json'));
    // With the daemon running, enable has it listen first, then converts them.
    const d = spawnDaemon(h.env);
    let r;
    try {
      await d.waitFor((l) => l.msg === 'daemon started', 20_000);
      r = await runCli(['broker', 'enable', '--json'], { env: h.env });
    } finally {
      await d.stop();
    }
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { converted: Array<{ client: string; mode: string }> };
    expect(doc.converted.map((c) => `${c.client}:${c.mode}`).sort()).toEqual(['gemini:broker-endpoint', 'windsurf:broker-endpoint']);
    const ws = JSON.parse(await h.read('.codeium/windsurf/mcp_config.json')) as { mcpServers: { certorix: { serverUrl: string; headers?: unknown } } };
    expect(ws.mcpServers.certorix.serverUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{22}\/certorix$/);
    expect(ws.mcpServers.certorix.headers).toBeUndefined();
  });

  it('broker status lists every entry with its mode, the store, and the endpoint', async () => {
    const r = await runCli(['broker', 'status', '--json'], { env: h.env });
    const doc = JSON.parse(r.stdout) as StatusDoc;
    expect(doc.store.backend).toBe('file');
    expect(doc.store.where).toBe(path.join(h.stateDir, 'broker-tokens.json'));
    expect(doc.endpoint.service).toBe(true);
    expect(doc.endpoint.entries).toBe(2);
    expect(doc.endpoint.up).toBe(false); // no daemon in this test
    expect(r.code).toBe(2);
    const byClient = new Map(doc.entries.map((e) => [e.client + ':' + e.mode, e]));
    for (const f of ALL) {
      const want = f.client === 'shell' ? 'plaintext' : REMOTE.has(f.client) ? 'broker-endpoint' : 'broker-exec';
      expect(byClient.get(`${f.client}:${want}`), `${f.client} ${want}`).toBeDefined();
    }
    expect(byClient.get('claude-code:broker-headers')).toBeDefined();
    for (const e of doc.entries) {
      expect(e.fingerprint).toBe(fingerprint(tok));
      if (e.mode !== 'plaintext') expect(e.state).toBe('ok');
    }
    const store = JSON.parse(await readFile(doc.store.where, 'utf8')) as Record<string, string>;
    expect(Object.values(store)).toEqual([tok]);
    expect(((await import('node:fs')).statSync(doc.store.where).mode & 0o777).toString(8)).toBe('600');
  });

  it('status, history and doctor keep working: the token is still tracked with its converted locations', async () => {
    const st = await runCli(['status', '--json'], { env: h.env });
    // No daemon here: the endpoint entries cannot connect, and status says so (exit 2, with the fix).
    expect(st.code, st.stderr).toBe(2);
    expect(st.stderr).toContain('The local endpoint is down');
    expect(st.stderr).toContain('systemctl --user start mcp-token-rotator');
    const doc = JSON.parse(st.stdout) as { tokens: Array<{ fingerprint: string; locations: Array<{ path: string; client: string }> }>; brokerProblems: Array<{ kind: string }> };
    expect(doc.brokerProblems.map((p) => p.kind)).toEqual(['endpoint-down']);
    const t = doc.tokens.find((x) => x.fingerprint === fingerprint(tok));
    expect(new Set(t?.locations.map((l) => l.client))).toEqual(new Set(ALL.map((f) => f.client)));
    const hist = await runCli(['history', '--json'], { env: h.env });
    const ev = JSON.parse(hist.stdout) as { events: Array<{ type: string; fingerprint: string; files: string[] }> };
    expect(ev.events.filter((e) => e.type === 'broker-enabled')).toHaveLength(2);
    const doc2 = await runCli(['doctor', '--offline', '--json'], { env: h.env });
    const f = JSON.parse(doc2.stdout) as { findings: Array<{ id: string; severity: string; message: string }> };
    expect(f.findings.find((x) => x.id === 'broker-store')?.message).toContain('file store');
    expect(f.findings.find((x) => x.id === 'broker-endpoint-down')?.severity).toBe('warn');
    const scan = await runCli(['scan', '--json'], { env: h.env });
    expect(scan.code, scan.stderr).toBe(0);
    expect((JSON.parse(scan.stdout) as { tokens: Array<{ fingerprint: string; role: string }> }).tokens[0]?.role).toBe('editor');
  });

  it('disable puts every file back byte for byte', async () => {
    const dry = await runCli(['broker', 'disable', '--dry-run'], { env: h.env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(findLeaks([tok], [await h.read('.cursor/mcp.json')])).toEqual([]);
    const r = await runCli(['broker', 'disable', '--json'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { restored: Array<{ exact: boolean }> };
    expect(doc.restored.every((e) => e.exact)).toBe(true);
    expect(await snapshot(h)).toEqual(before);
    const store = JSON.parse(await h.read('.local/state/mcp-token-rotator/broker-tokens.json')) as Record<string, string>;
    expect(store).toEqual({});
    const st = await runCli(['broker', 'status', '--json'], { env: h.env });
    expect((JSON.parse(st.stdout) as StatusDoc).entries.every((e) => e.mode === 'plaintext')).toBe(true);
  });
});

describe('disable after the token changed behind the broker', () => {
  it('restores each entry identical but for the token', async () => {
    const { h, tok } = await setupHome();
    try {
      const before = await snapshot(h);
      expect((await runCli(['broker', 'enable'], { env: h.env })).code).toBe(0);
      // What a rotation does to a slot (broker-core's executor): the lineage moves on, the store holds the new token.
      const newTok = 'ctx_rotated_' + 'N'.repeat(32);
      const store = new Store(path.join(h.stateDir, 'rotator.db'));
      const reg = new BrokerRegistry(store);
      const [slot] = reg.moveSlots(fingerprint(tok), fingerprint(newTok), new Date().toISOString());
      store.close();
      await new FileTokenStore(h.stateDir).write(slot!, new (await import('../../src/secret.js')).Secret(newTok));
      const r = await runCli(['broker', 'disable'], { env: h.env });
      expect(r.code, r.stderr).toBe(0);
      for (const f of ALL) {
        const want = f.client === 'shell' || REMOTE.has(f.client) ? before.get(f.rel) : before.get(f.rel)!.split(tok).join(newTok);
        expect(await h.read(f.rel), f.client).toBe(want);
      }
    } finally {
      await h.cleanup();
    }
  });
});

describe('the daemon heals a restored plaintext copy back to the broker form', () => {
  it('converts the entry again and keeps the token in the store', async () => {
    const { h, tok } = await setupHome();
    const d = spawnDaemon(h.env);
    try {
      await d.waitFor((l) => l.msg === 'daemon started', 15_000);
      const rel = '.config/Claude/claude_desktop_config.json';
      // Heal writes only private files (test/broker/heal.test.ts has the refusals).
      await chmod(h.path(rel), 0o600);
      const r = await runCli(['broker', 'enable', '--json'], { env: h.env });
      expect(r.code, r.stderr).toBe(0);
      const converted = await h.read(rel);
      // Claude Desktop writes back the config it had in memory.
      await h.write(rel, FIXTURES[0]!.content(tok));
      await d.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('converted back to broker mode'), 15_000);
      expect(await h.read(rel)).toBe(converted);
      const hist = JSON.parse((await runCli(['history', '--json'], { env: h.env })).stdout) as { events: Array<{ type: string; files: string[] }> };
      expect(hist.events.some((e) => e.type === 'healed' && e.files.includes(h.path(rel)))).toBe(true);
    } finally {
      await d.stop();
      await h.cleanup();
    }
  }, 60_000);
});
