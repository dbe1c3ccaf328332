/**
 * Broker mode across the service's install and removal (issue 15 items 4, 5 and the
 * contract's "status reports broker problems"): status says when converted entries cannot
 * work (endpoint down, wrapper program gone), and uninstall-service will not strand them.
 * systemctl is a stand-in on PATH (no user manager here); everything else is real: the
 * built CLI, a temp HOME with the 13 clients' configs, the fake API, a real listener.
 */
import { createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { findLeaks, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { Store } from '../../src/store/store.js';
import { brokerProblems, shellWords, wrapperPrograms, type HealthFacts } from '../../src/broker/health.js';
import { UNIT, fakeSystemctl, setup, type StatusDoc } from './helpers.js';

describe('wrapperPrograms (pure): the programs a converted entry runs, from the text enable wrote', () => {
  const slot = 'certorix-0a1b2c3d';
  it('exec entries in JSON, TOML and YAML: node and the CLI script', () => {
    const json = `{\n  "command": "/opt/node 20/bin/node",\n  "args": ["/opt/mtr/dist/src/cli/main.js", "exec", "${slot}", "--state-dir", "/h/.local/state/mcp-token-rotator", "--", "npx", "-y", "@certorix/mcp-server"]\n}`;
    expect(wrapperPrograms(json, 'exec', slot)).toEqual(['/opt/node 20/bin/node', '/opt/mtr/dist/src/cli/main.js']);
    const toml = `[mcp_servers.certorix]\ncommand = "/usr/bin/node"\nargs = ["/opt/mtr/main.js", "exec", "${slot}", "--state-dir", "/s", "--", "npx"]\n`;
    expect(wrapperPrograms(toml, 'exec', slot)).toEqual(['/usr/bin/node', '/opt/mtr/main.js']);
    const yaml = `certorix:\n  command: "/usr/bin/node"\n  args:\n    - "/opt/mtr/main.js"\n    - "exec"\n    - "${slot}"\n    - npx\n`;
    expect(wrapperPrograms(yaml, 'exec', slot)).toEqual(['/usr/bin/node', '/opt/mtr/main.js']);
  });

  it('a portable project entry runs the bare command from PATH; escapes are decoded', () => {
    expect(wrapperPrograms(`{"command": "mcp-token-rotator", "args": ["exec", "${slot}", "--", "npx"]}`, 'exec', slot)).toEqual(['mcp-token-rotator']);
    expect(wrapperPrograms(`{"command": "C:\\\\node\\\\node.exe", "args": ["C:\\\\mtr\\\\main.js", "exec", "${slot}"]}`, 'exec', slot)).toEqual(['C:\\node\\node.exe', 'C:\\mtr\\main.js']);
  });

  it("Claude Code's headersHelper: a shell command line", () => {
    const text = `{"type": "http", "url": "https://mcp.certorix.com/mcp", "headersHelper": "'/opt/my node/node' /opt/mtr/main.js headers ${slot} --state-dir /s"}`;
    expect(wrapperPrograms(text, 'headers-helper', slot)).toEqual(['/opt/my node/node', '/opt/mtr/main.js']);
    expect(shellWords(`'/a b/c' "d e" f\\ g 'it'\\''s'`)).toEqual(['/a b/c', 'd e', 'f g', "it's"]);
  });

  it('claims nothing where the wrapper is not recognisable (endpoint entries, another slot)', () => {
    expect(wrapperPrograms(`{"url": "http://127.0.0.1:4000/x/certorix"}`, 'endpoint', slot)).toBeNull();
    expect(wrapperPrograms(`{"command": "/usr/bin/node", "args": ["/m.js", "exec", "certorix-ffffffff"]}`, 'exec', slot)).toBeNull();
  });
});

describe('brokerProblems (pure)', () => {
  const base: HealthFacts = { platform: 'linux', endpoint: null, wrappers: [], cli: '/opt/mtr/main.js' };
  const ws = { path: '/h/.codeium/windsurf/mcp_config.json', client: 'windsurf', server: 'certorix' };
  it('an endpoint entry while the endpoint is down: the service to start when a unit exists, else install-service; broker disable either way', () => {
    expect(brokerProblems({ ...base, endpoint: { port: 4000, up: true, unitFile: true, entries: [ws] } })).toEqual([]);
    const [withUnit] = brokerProblems({ ...base, endpoint: { port: 4000, up: false, unitFile: true, entries: [ws] } });
    expect(withUnit?.message).toContain('127.0.0.1:4000 does not answer');
    expect(withUnit?.message).toContain(ws.path);
    expect(withUnit?.fix).toContain('systemctl --user start mcp-token-rotator');
    expect(withUnit?.fix).toContain('broker disable');
    const [mac] = brokerProblems({ ...base, platform: 'darwin', endpoint: { port: 4000, up: false, unitFile: true, entries: [ws] } });
    expect(mac?.fix).toContain('launchctl kickstart');
    const [none] = brokerProblems({ ...base, endpoint: { port: null, up: false, unitFile: false, entries: [ws] } });
    expect(none?.message).toContain('no port is recorded');
    expect(none?.fix).toContain('install-service');
  });

  it('a port held by another uid is a stranger, not "up": named with its uid and the restart that moves off it', () => {
    expect(brokerProblems({ ...base, endpoint: { port: 4000, up: true, unitFile: true, entries: [ws], strangerUid: null } })).toEqual([]);
    const [p] = brokerProblems({ ...base, endpoint: { port: 4000, up: true, unitFile: true, entries: [ws], strangerUid: 65534 } });
    expect(p?.kind).toBe('endpoint-stranger');
    expect(p?.message).toContain('held by another program (uid 65534)');
    expect(p?.message).toContain(ws.path);
    expect(p?.fix).toContain('Restart the daemon');
  });

  it('a bare wrapper command (portable entry) is "not found on PATH", a path "no longer exists"', () => {
    const [p] = brokerProblems({ ...base, wrappers: [{ ...ws, missing: ['mcp-token-rotator', '/old/node'] }] });
    expect(p?.message).toContain('mcp-token-rotator (not found on PATH), /old/node (no longer exists)');
  });

  it('wrappers whose program is gone, named with their files; found ones say nothing', () => {
    expect(brokerProblems({ ...base, wrappers: [{ ...ws, missing: [] }] })).toEqual([]);
    const [p] = brokerProblems({ ...base, wrappers: [{ ...ws, missing: ['/old/main.js'] }, { ...ws, path: '/h/.cursor/mcp.json', missing: ['/old/main.js'] }] });
    expect(p?.kind).toBe('wrapper-missing');
    expect(p?.message).toContain('/old/main.js (no longer exists)');
    expect(p?.files).toEqual([ws.path, '/h/.cursor/mcp.json']);
    expect(p?.fix).toContain('"mcp-token-rotator broker disable", then "mcp-token-rotator broker enable"');
  });
});

describe('with broker mode on and the service installed (stand-in systemctl)', () => {
  let api: FakeCertorix;
  let h: TempHome;
  let tok: string;
  let port: number;
  beforeAll(async () => {
    api = await startFakeCertorix();
    ({ h, tok } = await setup(api));
    await h.write(UNIT, '[Unit]\nDescription=test stand-in\n');
    await fakeSystemctl(h, 'active');
    // enable writes endpoint URLs only while the daemon serves the endpoint; it is then
    // stopped, which is the "endpoint down" this file is about.
    const d = spawnDaemon(h.env);
    try {
      await d.waitFor((l) => l.msg === 'daemon started', 20_000);
      const en = await runCli(['broker', 'enable', '--json'], { env: h.env });
      expect(en.code, en.stderr).toBe(0);
    } finally {
      await d.stop();
    }
    const st = JSON.parse((await runCli(['broker', 'status', '--json'], { env: h.env })).stdout) as StatusDoc;
    expect(st.endpoint.entries).toBe(2);
    port = st.endpoint.port as number;
  }, 60_000);
  afterAll(async () => {
    await h.cleanup();
    await api.close();
  });

  it('status: an endpoint entry while the endpoint is down is exit 2 with the fix; once it answers, nothing', async () => {
    const down = await runCli(['status'], { env: h.env });
    expect(down.code, down.stderr).toBe(2);
    expect(down.stdout).toContain(`The local endpoint is down (127.0.0.1:${port} does not answer)`);
    expect(down.stdout).toContain('-> Start the service ("systemctl --user start mcp-token-rotator")');
    // A listener on the port (what the daemon's endpoint is to status: loopback liveness only).
    const srv: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    try {
      const up = await runCli(['status', '--json'], { env: h.env });
      expect(up.code, up.stderr).toBe(0);
      expect((JSON.parse(up.stdout) as { brokerProblems: unknown[] }).brokerProblems).toEqual([]);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it('status: an entry whose wrapper program no longer exists (the package moved) is exit 2, naming it and the fix', async () => {
    const rel = '.cursor/mcp.json';
    const doc = JSON.parse(await h.read(rel)) as { mcpServers: { certorix: { command: string; args: string[] } } };
    const cli = doc.mcpServers.certorix.args[0] as string;
    expect(cli).toMatch(/main\.js$/);
    const moved = path.join(h.home, 'old-install', 'dist', 'src', 'cli', 'main.js');
    // What a moved package leaves: the config and enable's record still name the old path.
    const file = h.path(rel);
    await h.write(rel, (await h.read(rel)).split(JSON.stringify(cli)).join(JSON.stringify(moved)));
    const store = new Store(path.join(h.stateDir, 'rotator.db'));
    try {
      store.db.prepare('UPDATE broker_entries SET converted_text = replace(converted_text, ?, ?) WHERE path = ?').run(JSON.stringify(cli), JSON.stringify(moved), file);
    } finally {
      store.close();
    }
    const r = await runCli(['status', '--json'], { env: h.env });
    expect(r.code).toBe(2);
    const problems = (JSON.parse(r.stdout) as { brokerProblems: Array<{ kind: string; files: string[] }> }).brokerProblems;
    expect(problems.find((p) => p.kind === 'wrapper-missing')?.files).toEqual([file]);
    expect(r.stderr).toContain(`${moved} (no longer exists)`);
    expect(r.stderr).toContain('"mcp-token-rotator broker disable", then "mcp-token-rotator broker enable"');
  });

  it('uninstall-service refuses (exit 2) while entries are converted, naming broker disable; nothing is stopped or removed', async () => {
    const cursor = await h.read('.cursor/mcp.json');
    const r = await runCli(['uninstall-service'], { env: h.env });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('Broker mode is on');
    expect(r.stderr).toContain('"mcp-token-rotator broker disable"');
    expect(r.stderr).toContain('uninstall-service --disable-broker');
    expect(existsSync(h.path(UNIT))).toBe(true);
    expect(await readFile(h.path('systemctl.log'), 'utf8')).not.toContain('disable --now');
    expect(await h.read('.cursor/mcp.json')).toBe(cursor);
  });

  it('uninstall-service --disable-broker: broker disable first (tokens back in the configs), then the service goes', async () => {
    const r = await runCli(['uninstall-service', '--disable-broker'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Restored \d+ entries to plaintext/);
    expect(r.stdout).toContain('The service is stopped and removed.');
    expect(r.stdout.indexOf('Restored')).toBeLessThan(r.stdout.indexOf('Ran: systemctl --user disable --now'));
    expect(existsSync(h.path(UNIT))).toBe(false);
    expect(await readFile(h.path('systemctl.log'), 'utf8')).toContain('--user disable --now mcp-token-rotator.service');
    for (const rel of ['.cursor/mcp.json', '.codeium/windsurf/mcp_config.json']) expect(findLeaks([tok], [await h.read(rel)]), rel).not.toEqual([]);
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code, st.stderr).toBe(0);
    expect((JSON.parse(st.stdout) as { brokerProblems: unknown[] }).brokerProblems).toEqual([]);
  });
});
