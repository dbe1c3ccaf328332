import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { CLI, findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { installBin, LOCAL_SERVER, startClient, type RunningClient, type StdioEntry } from '../helpers/broker.js';
import { fingerprint } from '../../src/fingerprint.js';

// Issue 15, item 6: a project-scoped config (extraConfigs, Claude Code's projects.*) gets the
// bare command and the slot, so it works for every teammate who has the tool on PATH.
let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let h: TempHome | undefined;
const clients: RunningClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close().catch(() => undefined);
  await h?.cleanup();
  h = undefined;
});

const PROJECT = 'code/app/.mcp.json';
const CLAUDE = '.claude.json';
const DESKTOP = '.config/Claude/claude_desktop_config.json';

describe('portable entries in project-scoped configs', () => {
  it('a project .mcp.json and a ~/.claude.json projects entry get no path of this user; a client with the installed bin on PATH works; disable restores byte for byte', async () => {
    const email = `portable-${Math.random().toString(36).slice(2)}@example.com`;
    h = await makeHome(api.url);
    await h.settings({ retry: { attempts: 4, baseMs: 5, maxMs: 50 }, requestTimeoutMs: 2000, broker: { store: 'file' }, extraConfigs: ['~/code/*/.mcp.json'] });
    const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
    // As a team commits it: a bare "node" and a server script (here the stand-in).
    const server = { command: 'node', args: [LOCAL_SERVER], env: { CERTORIX_API_TOKEN: tok, CERTORIX_API_URL: api.url } };
    const project = JSON.stringify({ mcpServers: { certorix: server } }, null, 2) + '\n';
    const claude = JSON.stringify({ numStartups: 3, projects: { [h.path('code/app')]: { allowedTools: [], mcpServers: { certorix: server } } } }, null, 2) + '\n';
    const desktop = JSON.stringify({ mcpServers: { certorix: { ...server, command: process.execPath } } }, null, 2) + '\n';
    await h.write(PROJECT, project, 0o600);
    await h.write(CLAUDE, claude, 0o600);
    await h.write(DESKTOP, desktop, 0o600);

    const en = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(en.code, en.stderr).toBe(0);
    const doc = JSON.parse(en.stdout) as { converted: Array<{ path: string }>; notes: string[] };
    expect(new Set(doc.converted.map((c) => c.path))).toEqual(new Set([h.path(PROJECT), h.path(CLAUDE), h.path(DESKTOP)]));
    // Not installed yet when enable ran: it says the portable entries need it on PATH.
    expect(doc.notes.join('\n')).toMatch(/run "mcp-token-rotator" from PATH.*not on your PATH/);

    const p = await h.read(PROJECT);
    const c = await h.read(CLAUDE);
    for (const [name, text] of [['project', p], ['claude.json', c]] as const) {
      expect(findLeaks([tok], [text]), name).toEqual([]);
      expect(text, name).not.toContain(h.stateDir);
      expect(text, name).not.toContain(process.execPath);
      expect(text, name).not.toContain('dist/src/cli/main.js');
      expect(text, name).not.toContain('--state-dir');
    }
    // The project's home path is a key Claude Code itself wrote; no other home path appears.
    expect(p).not.toContain(h.home);
    expect(c.split(h.path('code/app')).join('')).not.toContain(h.home);
    const entry = (JSON.parse(p) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix;
    expect(entry.command).toBe('mcp-token-rotator');
    expect(entry.args.slice(0, 3)).toEqual(['exec', expect.stringMatching(/^certorix-[0-9a-f]{8}$/), '--']);
    const projEntry = (JSON.parse(c) as { projects: Record<string, { mcpServers: { certorix: StdioEntry } }> }).projects[h.path('code/app')]!.mcpServers.certorix;
    expect(projEntry.command).toBe('mcp-token-rotator');
    // A GUI client's user-level config keeps absolute paths (it starts servers with a bare PATH).
    const d = (JSON.parse(await h.read(DESKTOP)) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix;
    expect(d.command).toBe(process.execPath);
    expect(d.args).toContain('--state-dir');

    // "Installed": the bin on PATH, as npm's global bin directory has it.
    const bin = h.path('.npm-global/bin');
    await mkdir(bin, { recursive: true });
    await symlink(CLI, path.join(bin, 'mcp-token-rotator'));
    const PATH = [bin, path.dirname(process.execPath), '/usr/bin', '/bin'].join(':');
    for (const e of [entry, projEntry]) {
      const client = await startClient({ ...e, env: { ...e.env, HOME: h.home, PATH } });
      clients.push(client);
      const res = (await client.client.callTool({ name: 'whoami' })) as { content: Array<{ text: string }>; isError?: boolean };
      expect(res.isError, client.stderr()).toBeFalsy();
      expect(res.content[0]!.text).toBe(`${email} ${fingerprint(tok)}`);
    }

    const dis = await runCli(['broker', 'disable', '--json'], { env: h.env });
    expect(dis.code, dis.stderr).toBe(0);
    expect(await h.read(PROJECT)).toBe(project);
    expect(await h.read(CLAUDE)).toBe(claude);
    expect(await h.read(DESKTOP)).toBe(desktop);
  }, 60_000);
});

describe('remote entries in project-scoped configs', () => {
  it('are not pointed at the local endpoint (its URL holds this user\'s route secret): they stay plaintext and say why', async () => {
    h = await makeHome(api.url);
    await h.settings({ broker: { store: 'file' }, extraConfigs: ['~/code/*/.cursor/mcp.json'] });
    const tok = api.addToken({ email: `portable-remote-${Math.random().toString(36).slice(2)}@example.com`, ageDays: 10 });
    // The service counts as installed: user-level remote entries would get the endpoint.
    await h.write('.config/systemd/user/mcp-token-rotator.service', '[Service]\n');
    const rel = 'code/app/.cursor/mcp.json';
    const text = JSON.stringify({ mcpServers: { certorix: { url: 'https://mcp.certorix.com/mcp', headers: { Authorization: `Bearer ${tok}` } } } }, null, 2) + '\n';
    await h.write(rel, text, 0o600);
    const en = await runCli(['broker', 'enable', '--json'], { env: h.env });
    expect(en.code, en.stderr).toBe(0);
    const doc = JSON.parse(en.stdout) as { plaintext: Array<{ path: string; reason: string }> };
    expect(doc.plaintext.find((e) => e.path === h!.path(rel))?.reason).toMatch(/project-scoped config/);
    expect(await h.read(rel)).toBe(text);
  }, 30_000);
});

describe('a catalog config tracked by git (a dotfiles repository)', () => {
  it('gets the portable entry too; an untracked one keeps absolute paths', async () => {
    const { execFileSync } = await import('node:child_process');
    h = await makeHome(api.url);
    const tok = api.addToken({ email: `dotfiles-${Math.random().toString(36).slice(2)}@example.com`, ageDays: 10 });
    const entry = JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: tok } } } }, null, 2) + '\n';
    await h.write('.cursor/mcp.json', entry, 0o600);
    await h.write(DESKTOP, entry, 0o600);
    execFileSync('git', ['init', '-q', h.home]);
    execFileSync('git', ['-C', h.home, 'add', '.cursor/mcp.json']);
    await installBin(h);
    const en = await runCli(['broker', 'enable'], { env: h.env });
    expect(en.code, en.stderr).toBe(0);
    expect(en.stdout + en.stderr).not.toContain('not on your PATH');
    const cursor = (JSON.parse(await h.read('.cursor/mcp.json')) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix;
    expect(cursor.command).toBe('mcp-token-rotator');
    expect(JSON.stringify(cursor)).not.toContain(h.home);
    const desktop = (JSON.parse(await h.read(DESKTOP)) as { mcpServers: { certorix: StdioEntry } }).mcpServers.certorix;
    expect(desktop.command).toBe(process.execPath);
  }, 30_000);
});
