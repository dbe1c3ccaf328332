/**
 * `npm run demo`: a full cycle in a throw-away HOME against the fake Certorix API, so a
 * newcomer can see what the tool does without an account or touching real configs.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeCertorix } from './certorix.js';
import { startFakeRemote } from './remote-server.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

async function main(): Promise<void> {
  const api = await startFakeCertorix();
  const home = mkdtempSync(path.join(tmpdir(), 'mtr-demo-'));
  const env = { PATH: process.env.PATH ?? '', HOME: home, CERTORIX_API_URL: api.url };
  try {
    const token = api.addToken({ email: 'you@example.com', role: 'editor', ageDays: 95 });
    const write = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(home, rel)), { recursive: true });
      writeFileSync(path.join(home, rel), text);
    };
    write('.config/Claude/claude_desktop_config.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: token } } } }, null, 2) + '\n');
    write('.cursor/mcp.json', JSON.stringify({ mcpServers: { certorix: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: token } } } }, null, 2) + '\n');
    write('.codex/config.toml', `[mcp_servers.certorix]\ncommand = "npx"\nenv = { CERTORIX_API_TOKEN = "${token}" } # my token\n`);
    // Asynchronous: the fake API lives in this process and must keep answering.
    const run = (...args: string[]) =>
      new Promise<void>((resolve) => {
        execFile(process.execPath, [cli, ...args], { env, encoding: 'utf8' }, (e, stdout, stderr) => {
          const code = e ? ((e as { code?: number }).code ?? 1) : 0;
          process.stdout.write(`\n$ mcp-token-rotator ${args.join(' ')}\n${stdout}${stderr}(exit ${code})\n`);
          resolve();
        });
      });
    process.stdout.write(`Demo HOME: ${home}\nFake Certorix API: ${api.url}\nA 95-day-old token sits in Claude Desktop, Cursor and Codex configs.\n`);
    await run('scan');
    await run('status');
    await run('rotate', '--dry-run');
    await run('rotate');
    await run('status');
    await run('history');
    process.stdout.write(`\n~/.codex/config.toml now (the comment and layout are kept; the token is shown by fingerprint only in output):\n`);
    process.stdout.write(readFileSync(path.join(home, '.codex/config.toml'), 'utf8').replace(/"ctx_[^"]+"/, '"<new token>"'));
    await brokerLeg(home, env, api.url, run);
    const remote = await startFakeRemote(api);
    try {
      await remoteLeg(home, env, remote, run);
    } finally {
      await remote.close();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
    await api.close();
  }
}

/**
 * Broker mode: a local server (the stand-in of Certorix's, test/fake/local-server.ts) run by a
 * real MCP client from the entry `broker enable` wrote, calling a tool without pause through
 * two rotations: no call fails and the client is never restarted.
 */
async function brokerLeg(home: string, env: Record<string, string>, apiUrl: string, run: (...args: string[]) => Promise<void>): Promise<void> {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
  const cfg = path.join(home, '.config/Claude/claude_desktop_config.json');
  const doc = JSON.parse(readFileSync(cfg, 'utf8')) as { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> };
  const current = doc.mcpServers.certorix?.env.CERTORIX_API_TOKEN ?? '';
  const localServer = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'local-server.js');
  doc.mcpServers['certorix-local'] = { command: process.execPath, args: [localServer], env: { CERTORIX_API_TOKEN: current, CERTORIX_API_URL: apiUrl } };
  writeFileSync(cfg, JSON.stringify(doc, null, 2) + '\n');
  process.stdout.write(`\n--- Broker mode: the token leaves the configs; rotations need no client restart ---\n`);
  await run('broker', 'enable');
  const entry = (JSON.parse(readFileSync(cfg, 'utf8')) as typeof doc).mcpServers['certorix-local'] as { command: string; args: string[]; env: Record<string, string> };
  process.stdout.write(`\nClaude Desktop's local server entry now (no token in it):\n${JSON.stringify(entry, null, 2)}\n`);
  const client = new Client({ name: 'demo-client', version: '1.0.0' });
  const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: entry.env, stderr: 'ignore' });
  await client.connect(transport);
  const pid = transport.pid;
  let running = true;
  let ok = 0;
  let failed = 0;
  const seen = new Set<string>();
  const loop = (async () => {
    while (running) {
      const r = (await client.callTool({ name: 'whoami' }).catch(() => ({ isError: true, content: [] }))) as { isError?: boolean; content: Array<{ text?: string }> };
      if (r.isError) failed++;
      else {
        ok++;
        seen.add(r.content[0]?.text?.split(' ')[1] ?? '?');
      }
    }
  })();
  await run('rotate');
  await run('rotate');
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await loop;
  process.stdout.write(`\nA real MCP client called the server ${ok + failed} times during two rotations: ${failed} failed; the server used tokens ${[...seen].join(', ')}; client process ${transport.pid === pid ? 'never restarted' : 'RESTARTED'}.\n`);
  await client.close();
  await run('broker', 'status');
  await run('broker', 'disable');
}

/**
 * Broker mode for a remote entry: Cursor's `url` + `Authorization` header for the hosted
 * server (here the stand-in, test/fake/remote-server.ts, named in `mcpHosts`) becomes a URL
 * of the daemon's local endpoint. A real Streamable HTTP client calls through it without
 * pause through a rotation that the daemon runs.
 */
async function remoteLeg(home: string, env: Record<string, string>, remote: Awaited<ReturnType<typeof startFakeRemote>>, run: (...args: string[]) => Promise<void>): Promise<void> {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  process.stdout.write(`\n--- Broker mode, remote entry: the daemon's local endpoint adds the current token ---\n`);
  // The stand-in runs on 127.0.0.1: name it as a Certorix MCP host (real ones are under certorix.com).
  const settings = path.join(home, '.config/mcp-token-rotator/config.json');
  mkdirSync(path.dirname(settings), { recursive: true });
  writeFileSync(settings, JSON.stringify({ mcpHosts: ['127.0.0.1'] }, null, 2) + '\n');
  const cfg = path.join(home, '.cursor/mcp.json');
  const doc = JSON.parse(readFileSync(cfg, 'utf8')) as { mcpServers: Record<string, unknown> };
  const token = (/"(ctx_[^"]+)"/.exec(readFileSync(path.join(home, '.codex/config.toml'), 'utf8')) ?? [])[1] ?? '';
  doc.mcpServers['certorix-remote'] = { url: remote.mcpUrl, headers: { Authorization: `Bearer ${token}` } };
  writeFileSync(cfg, JSON.stringify(doc, null, 2) + '\n');
  process.stdout.write(`Cursor gets a remote entry: { "url": "${remote.mcpUrl}", "headers": { "Authorization": "Bearer <token>" } }\n`);
  // Remote entries are converted only while the daemon runs (enable has it listen first).
  const daemon = spawn(process.execPath, [cli, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  daemon.stdout.on('data', (d: Buffer) => (log += d.toString()));
  daemon.stderr.resume();
  const waitLog = async (re: RegExp, ms: number): Promise<boolean> => {
    for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 100))) if (re.test(log)) return true;
    return false;
  };
  try {
    if (!(await waitLog(/"msg":"daemon started"/, 20_000))) throw new Error(`the daemon did not start:\n${log}`);
    process.stdout.write(`\n(mcp-token-rotator daemon started in the background)\n`);
    await run('broker', 'enable');
    const entry = (JSON.parse(readFileSync(cfg, 'utf8')) as { mcpServers: Record<string, { url: string }> }).mcpServers['certorix-remote']!;
    process.stdout.write(`\nCursor's remote entry now (no token in it; the daemon must keep running):\n${JSON.stringify(entry, null, 2)}\n`);
    if (!(await waitLog(/"msg":"broker endpoint listening"/, 15_000))) throw new Error(`the local endpoint did not start:\n${log}`);
    const client = new Client({ name: 'demo-remote-client', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(entry.url));
    await client.connect(transport);
    const session = transport.sessionId;
    const first = remote.seen.length;
    let running = true;
    let ok = 0;
    let failed = 0;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        const r = (await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } }).catch(() => ({ isError: true, content: [] }))) as { isError?: boolean };
        if (r.isError) failed++;
        else ok++;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await run('rotate');
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await loop;
    const mine = remote.seen.slice(first).filter((s) => s.session === session);
    const fps = [...new Set(mine.map((s) => s.fingerprint))];
    const refused = mine.filter((s) => s.status === 401).length;
    process.stdout.write(
      `\nA real remote MCP client (Streamable HTTP, Cursor's entry) called the server ${ok + failed} times through the local endpoint during a rotation: ${failed} failed; the server saw tokens ${fps.join(' then ')}, ${refused} request(s) refused; the client kept its session (${transport.sessionId === session ? 'same' : 'CHANGED'}).\n`,
    );
    await transport.terminateSession().catch(() => undefined);
    await client.close();
    await run('broker', 'disable');
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('close', r));
  }
}

void main();
