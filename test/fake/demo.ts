/**
 * `npm run demo`: a full cycle in a throw-away HOME against the fake Certorix API, so a
 * newcomer can see what the tool does without an account or touching real configs.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeCertorix } from './certorix.js';

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
  } finally {
    rmSync(home, { recursive: true, force: true });
    await api.close();
  }
}

void main();
