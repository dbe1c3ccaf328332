/**
 * A stand-in for Certorix's local (stdio) MCP server, as the vendor's help article describes
 * it: it reads CERTORIX_API_TOKEN once at start and sends it on every REST call. Tools:
 * - `whoami`: GET /v1/token with the token; answers `<email> <fingerprint of the token used>`,
 *   or fails the call (isError) when the API refuses the token.
 * - `slow`: the same after `ms` milliseconds (an in-flight call during a rotation).
 * - `echo`: answers at once without the API (the relay benchmark's call).
 * Resources: `certorix://account` (subscribable), for the subscription re-apply.
 * CERTORIX_API_URL points it at the fake API; MCP_LOCAL_SERVER_START_MS delays its start;
 * MCP_LOCAL_SERVER_TOKEN_VAR names another variable to read the token from.
 */
import { createHash } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

// MCP_LOCAL_SERVER_TOKEN_VAR: read another provider's variable (a GitHub or GitLab server stand-in).
const token = process.env[process.env.MCP_LOCAL_SERVER_TOKEN_VAR ?? 'CERTORIX_API_TOKEN'] ?? '';
const apiUrl = (process.env.CERTORIX_API_URL ?? 'https://api.certorix.com').replace(/\/$/, '');
const fp = createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);

async function whoami(): Promise<{ content: Array<{ type: 'text'; text: string }>; isError?: boolean }> {
  const res = await fetch(`${apiUrl}/v1/token`, { headers: { authorization: `Bearer ${token}`, 'user-agent': 'certorix-local-server-standin (MCP)' } });
  const body = (await res.json().catch(() => ({}))) as { email?: string };
  if (res.status !== 200) return { content: [{ type: 'text', text: `Certorix API answered ${res.status} for token ${fp}` }], isError: true };
  return { content: [{ type: 'text', text: `${body.email ?? '?'} ${fp}` }] };
}

async function main(): Promise<void> {
  const startMs = Number(process.env.MCP_LOCAL_SERVER_START_MS ?? '0');
  if (startMs > 0) await new Promise((r) => setTimeout(r, startMs));
  const server = new McpServer({ name: 'certorix-standin', version: '1.0.0' }, { capabilities: { logging: {}, resources: { subscribe: true } } });
  server.registerTool('whoami', { description: 'Who the token belongs to' }, whoami);
  server.registerTool('slow', { description: 'whoami after a delay', inputSchema: { ms: z.number() } }, async ({ ms }) => {
    await new Promise((r) => setTimeout(r, ms));
    return whoami();
  });
  server.registerTool('echo', { description: 'Answers at once', inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerResource('account', 'certorix://account', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: fp }] }));
  server.server.setRequestHandler((await import('@modelcontextprotocol/sdk/types.js')).SubscribeRequestSchema, async () => ({}));
  await server.connect(new StdioServerTransport());
  process.stderr.write(`certorix stand-in ${process.pid} started with token ${fp}\n`);
}

void main();
