/**
 * A stand-in for a local (stdio) GitLab MCP server, as the common ones behave: it reads
 * GITLAB_PERSONAL_ACCESS_TOKEN (and GITLAB_API_URL, default gitlab.com) once at start and
 * sends the token on every REST call. Tools:
 * - `whoami`: GET /personal_access_tokens/self; answers `<token name> <fingerprint of the
 *   token used>`, or fails the call (isError) when GitLab refuses the token.
 * - `slow`: the same after `ms` milliseconds (an in-flight call during a rotation).
 */
import { createHash } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const token = process.env.GITLAB_PERSONAL_ACCESS_TOKEN ?? '';
const apiUrl = (process.env.GITLAB_API_URL ?? 'https://gitlab.com/api/v4').replace(/\/$/, '');
const fp = createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);

async function whoami(): Promise<{ content: Array<{ type: 'text'; text: string }>; isError?: boolean }> {
  const res = await fetch(`${apiUrl}/personal_access_tokens/self`, { headers: { 'private-token': token, 'user-agent': 'gitlab-mcp-standin (MCP)' } });
  const body = (await res.json().catch(() => ({}))) as { name?: string };
  if (res.status !== 200) return { content: [{ type: 'text', text: `GitLab API answered ${res.status} for token ${fp}` }], isError: true };
  return { content: [{ type: 'text', text: `${body.name ?? '?'} ${fp}` }] };
}

async function main(): Promise<void> {
  const server = new McpServer({ name: 'gitlab-standin', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Which token this server uses' }, whoami);
  server.registerTool('slow', { description: 'whoami after a delay', inputSchema: { ms: z.number() } }, async ({ ms }) => {
    await new Promise((r) => setTimeout(r, ms));
    return whoami();
  });
  await server.connect(new StdioServerTransport());
  process.stderr.write(`gitlab stand-in ${process.pid} started with token ${fp}\n`);
}

void main();
