/**
 * A stand-in for the hosted Certorix MCP server, on loopback, built on the MCP SDK's own
 * server transports: Streamable HTTP at `/mcp`, and the legacy HTTP+SSE transport at `/sse`
 * (+ `/messages`). Like the real one it checks the Bearer token on EVERY request against the
 * fake API's live tokens (a 401 with `WWW-Authenticate` otherwise, which is what invites
 * clients to start OAuth), and it binds sessions to the account, not to the token, as the
 * MCP spec says servers should: a session survives its token being regenerated, but another
 * account cannot use it.
 *
 * Tools: `echo {text}`, `whoami`, `trickle {steps, intervalMs}` (progress notifications over
 * time, for streaming tests), `slow-api {ms}` (uses the caller's token again after `ms`). `notifyAll(text)` sends a logging message on every session's
 * standalone GET stream.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { z } from 'zod';
import type { FakeCertorix } from './certorix.js';

export interface SeenRequest {
  at: number;
  method: string;
  path: string;
  /** Fingerprint of the Bearer sent (never the value), or null when none. */
  fingerprint: string | null;
  status: number;
  session: string | undefined;
}

export interface FakeRemote {
  url: string;
  /** Streamable HTTP endpoint. */
  mcpUrl: string;
  /** Legacy HTTP+SSE endpoint. */
  sseUrl: string;
  seen: SeenRequest[];
  /** Live sessions (Streamable HTTP and legacy) with their account. */
  sessions(): Array<{ id: string; email: string; kind: 'streamable' | 'sse' }>;
  notifyAll(text: string): Promise<void>;
  /** Redirect the next N requests (to test that nobody follows them with the token). */
  redirectNext(n: number, location: string): void;
  close(): Promise<void>;
}

const fp = (t: string): string => createHash('sha256').update(t, 'utf8').digest('hex').slice(0, 12);

interface Session {
  email: string;
  kind: 'streamable' | 'sse';
  server: McpServer;
  streamable?: StreamableHTTPServerTransport;
  sse?: SSEServerTransport;
}

export async function startFakeRemote(api: FakeCertorix, opts: { port?: number } = {}): Promise<FakeRemote> {
  const sessions = new Map<string, Session>();
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let redirects = 0;
  let redirectTo = '';

  const newServer = (email: string): McpServer => {
    const server = new McpServer({ name: 'certorix-fake-remote', version: '1.0.0' }, { capabilities: { logging: {} } });
    server.registerTool('echo', { description: 'Echo text back', inputSchema: { text: z.string() } }, ({ text }) => ({ content: [{ type: 'text', text }] }));
    server.registerTool('whoami', { description: 'The account of this session' }, () => ({ content: [{ type: 'text', text: email }] }));
    server.registerTool(
      'trickle',
      { description: 'Progress notifications over time', inputSchema: { steps: z.number().int(), intervalMs: z.number().int() } },
      async ({ steps, intervalMs }, extra) => {
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= steps; i++) {
          await new Promise((r) => setTimeout(r, intervalMs));
          if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
        }
        return { content: [{ type: 'text', text: `done ${steps}` }] };
      },
    );
    // Like a server tool that calls the Certorix API with the caller's token while it runs:
    // it fails if that token died mid-call (a regenerate that did not wait for it).
    server.registerTool('slow-api', { description: 'Uses the bearer again after a delay', inputSchema: { ms: z.number().int() } }, async ({ ms }, extra) => {
      await new Promise((r) => setTimeout(r, ms));
      const m = /^Bearer (.+)$/i.exec(String(extra.requestInfo?.headers.authorization ?? ''));
      const live = m?.[1] !== undefined && api.isLive(m[1]);
      return live ? { content: [{ type: 'text', text: 'ok' }] } : { isError: true, content: [{ type: 'text', text: 'token revoked during the call' }] };
    });
    return server;
  };

  const bearerAccount = (req: IncomingMessage): { email: string; bearer: string } | null => {
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1]) return null;
    const rec = api.liveTokens().find((t) => t.token === m[1]);
    return rec ? { email: rec.email, bearer: m[1] } : null;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    const record: SeenRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: url.pathname,
      fingerprint: m?.[1] ? fp(m[1]) : null,
      status: 0,
      session: (req.headers['mcp-session-id'] as string | undefined) ?? url.searchParams.get('sessionId') ?? undefined,
    };
    seen.push(record);
    res.on('finish', () => (record.status ||= res.statusCode));
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (redirects > 0) {
      redirects--;
      record.status = 307;
      res.writeHead(307, { location: redirectTo });
      return void res.end();
    }
    const who = bearerAccount(req);
    if (!who) {
      return reply(401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"' });
    }
    record.status = 200; // refined on finish

    if (url.pathname === '/mcp') {
      const sid = req.headers['mcp-session-id'];
      if (typeof sid === 'string') {
        const s = sessions.get(sid);
        if (!s?.streamable) return reply(404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
        if (s.email !== who.email) return reply(403, { jsonrpc: '2.0', id: null, error: { code: -32003, message: 'Session belongs to another account' } });
        return s.streamable.handleRequest(req, res);
      }
      if (req.method !== 'POST') return reply(400, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'No session' } });
      const server = newServer(who.email);
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { email: who.email, kind: 'streamable', server, streamable: transport });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      return transport.handleRequest(req, res);
    }

    if (url.pathname === '/sse' && req.method === 'GET') {
      const server = newServer(who.email);
      const transport = new SSEServerTransport('/messages', res);
      sessions.set(transport.sessionId, { email: who.email, kind: 'sse', server, sse: transport });
      transport.onclose = () => sessions.delete(transport.sessionId);
      await server.connect(transport);
      return;
    }

    if (url.pathname === '/messages' && req.method === 'POST') {
      const s = sessions.get(url.searchParams.get('sessionId') ?? '');
      if (!s?.sse) return reply(404, { error: 'Session not found' });
      if (s.email !== who.email) return reply(403, { error: 'Session belongs to another account' });
      return s.sse.handlePostMessage(req, res);
    }

    return reply(404, { error: 'not found' });
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(e) }));
    });
  });
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => http.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  const { port } = http.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    mcpUrl: `${url}/mcp`,
    sseUrl: `${url}/sse`,
    seen,
    sessions: () => [...sessions].map(([id, s]) => ({ id, email: s.email, kind: s.kind })),
    async notifyAll(text) {
      await Promise.all([...sessions.values()].map((s) => s.server.server.sendLoggingMessage({ level: 'info', data: text }).catch(() => undefined)));
    },
    redirectNext(n, location) {
      redirects = n;
      redirectTo = location;
    },
    async close() {
      for (const s of sessions.values()) await s.server.close().catch(() => undefined);
      sessions.clear();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
