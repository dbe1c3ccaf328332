import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Context } from '../../src/context.js';
import { BrokerRegistry, newSlotName } from '../../src/broker/registry.js';
import { FileTokenStore, BACKEND_META } from '../../src/broker/store.js';
import { Secret } from '../../src/secret.js';
import { readFile } from 'node:fs/promises';
import { CLI, ROOT, makeHome, type TempHome } from './home.js';
import type { FakeCertorix } from '../fake/certorix.js';

export const LOCAL_SERVER = path.join(ROOT, 'dist/test/fake/local-server.js');
export const CLAUDE_DESKTOP = '.config/Claude/claude_desktop_config.json';

export interface StdioEntry {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Broker mode set up by hand, as `broker enable` leaves it (until that command exists):
 * a slot in the registry, the token in the file store (pinned), and Claude Desktop's entry
 * in the converted form of BROKER.md, with no token in it.
 */
export async function convertedHome(h: TempHome, token: string, apiUrl: string, opts: { serverEnv?: Record<string, string> } = {}): Promise<{ slot: string; entry: StdioEntry }> {
  const ctx = new Context({ pathEnv: { platform: 'linux', home: h.home, env: { HOME: h.home } } });
  const slot = newSlotName();
  try {
    const secret = new Secret(token);
    await new FileTokenStore(ctx.paths.dir).write(slot, secret);
    ctx.store.setMeta(BACKEND_META, 'file');
    const now = ctx.nowIso();
    new BrokerRegistry(ctx.store).addSlot(slot, secret.fingerprint, now);
    ctx.store.recordSeen(secret.fingerprint, 'certorix', now);
  } finally {
    await ctx.close();
  }
  const entry: StdioEntry = {
    command: process.execPath,
    args: [CLI, 'exec', slot, '--state-dir', h.stateDir, '--', process.execPath, LOCAL_SERVER],
    env: { CERTORIX_API_URL: apiUrl, ...(opts.serverEnv ?? {}) },
  };
  await h.write(CLAUDE_DESKTOP, JSON.stringify({ mcpServers: { certorix: entry } }, null, 2) + '\n');
  return { slot, entry };
}

export interface RunningClient {
  client: Client;
  transport: StdioClientTransport;
  pid: number | null;
  closed: () => boolean;
  stderr: () => string;
}

/** A real SDK client started from the entry, with the SDK's default (minimal) environment. */
export async function startClient(entry: StdioEntry): Promise<RunningClient> {
  const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: entry.env, stderr: 'pipe' });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  let closed = false;
  client.onclose = () => (closed = true);
  await client.connect(transport);
  return { client, transport, pid: transport.pid, closed: () => closed, stderr: () => err };
}

export interface CallLoop {
  stop(): Promise<{ ok: number; failed: number; failures: string[]; fps: Set<string>; maxMs: number }>;
}

/** Calls `whoami` back to back (and `slow` now and then) until stopped; counts failures. */
export function callLoop(c: Client, opts: { slowEvery?: number; slowMs?: number } = {}): CallLoop {
  let running = true;
  let ok = 0;
  let failed = 0;
  let maxMs = 0;
  const failures: string[] = [];
  const fps = new Set<string>();
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const slow = opts.slowEvery !== undefined && i % opts.slowEvery === 0;
      const t0 = performance.now();
      try {
        const r = (await c.callTool(slow ? { name: 'slow', arguments: { ms: opts.slowMs ?? 200 } } : { name: 'whoami' })) as { content: Array<{ text: string }>; isError?: boolean };
        const text = r.content[0]?.text ?? '';
        if (r.isError) {
          failed++;
          failures.push(text);
        } else {
          ok++;
          fps.add(text.split(' ')[1] ?? '');
        }
      } catch (e) {
        failed++;
        failures.push((e as Error).message);
      }
      maxMs = Math.max(maxMs, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed, failures, fps, maxMs };
    },
  };
}

/**
 * One test's world: a temp HOME in broker mode, a token of its own account on the shared fake
 * API, and `n` real clients started from the converted entry as the config file holds it.
 */
export interface BrokerWorld {
  h: TempHome;
  email: string;
  tok: string;
  slot: string;
  entry: StdioEntry;
  clients: RunningClient[];
  /** The account's one live token on the fake API. */
  live(): string;
  close(): Promise<void>;
}

let worldSeq = 0;
export async function brokerWorld(api: FakeCertorix, n: number, opts: { serverEnv?: Record<string, string> } = {}): Promise<BrokerWorld> {
  const email = `broker${process.pid}-${++worldSeq}@example.com`;
  const h = await makeHome(api.url);
  const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
  const { slot } = await convertedHome(h, tok, api.url, opts);
  const config = JSON.parse(await readFile(h.path(CLAUDE_DESKTOP), 'utf8')) as { mcpServers: { certorix: StdioEntry } };
  const entry = config.mcpServers.certorix;
  const clients: RunningClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await startClient(entry));
  return {
    h,
    email,
    tok,
    slot,
    entry,
    clients,
    live() {
      const l = api.liveTokens(email);
      if (l.length !== 1) throw new Error(`expected one live token for ${email}, got ${l.length}`);
      return l[0]!.token;
    },
    async close() {
      for (const c of clients.splice(0)) await c.client.close().catch(() => undefined);
      await h.cleanup();
    },
  };
}

/**
 * The tool "installed": `mcp-token-rotator` on PATH (a link to the built CLI, as npm's global
 * bin directory has it), for portable entries (project-scoped configs run the bare command).
 * Returns the bin directory; `h.env.PATH` gets it first.
 */
export async function installBin(h: TempHome): Promise<string> {
  const { mkdir, symlink } = await import('node:fs/promises');
  const bin = h.path('.npm-global/bin');
  await mkdir(bin, { recursive: true });
  await symlink(CLI, path.join(bin, 'mcp-token-rotator')).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  h.env.PATH = [bin, path.dirname(process.execPath), h.env.PATH ?? '/usr/bin:/bin'].join(':');
  return bin;
}
