/**
 * What broker enable, disable, status and heal share: the token store, whether a local
 * endpoint can be relied on, the paths a converted entry names, and writing one config
 * with a rotation's care (client lock, atomic compare-before-rename, read-back).
 */
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import path from 'node:path';
import type { Context } from '../context.js';
import { formatForPath } from '../clients/catalog.js';
import type { FileFormat } from '../clients/formats.js';
import type { ConfigSnapshot } from '../clients/discover.js';
import { writeFileAtomic } from '../clients/write.js';
import { clientById } from '../clients/catalog.js';
import { withClientLock } from '../rotation/rewrite.js';
import { openTokenStore, type TokenStore } from './store.js';
import type { BrokerTarget } from './convert/convert.js';
import { shellJoin, defaultBin, serviceActive, unitPathFor } from '../service/service.js';
import type { EntryKind } from './registry.js';

/** The token store of this state dir (the backend chosen and pinned at the first call). */
export async function openBrokerStore(ctx: Context): Promise<TokenStore> {
  return openTokenStore(ctx);
}

export type BrokerMode = 'broker-exec' | 'broker-headers' | 'broker-endpoint' | 'plaintext';

/** One server entry as every broker report names it. */
export interface BrokerEntryRef {
  path: string;
  client: string;
  server: string;
  keyPath: string;
  mode: BrokerMode;
  fingerprint: string;
}

export function modeOf(kind: EntryKind): BrokerMode {
  return kind === 'exec' ? 'broker-exec' : kind === 'headers-helper' ? 'broker-headers' : 'broker-endpoint';
}

export interface EndpointFacts {
  daemon: boolean;
  service: boolean;
  /** The endpoint's port: settings, else the one chosen at the first enable; null before. */
  port: number | null;
}

/** Whether the daemon answers on its socket. */
export async function daemonRunning(ctx: Context): Promise<boolean> {
  const { callDaemon } = await import('../ipc/client.js');
  const r = await callDaemon(ctx.paths.socket, { method: 'ping' }, { timeoutMs: 3000 }).catch(() => null);
  return r !== null && r.ok;
}

/**
 * Whether the installed service keeps the daemon, and so the endpoint, up: the service
 * manager reports it active (systemctl --user is-active / launchctl print). A unit file
 * alone is not enough: one left by a failed install-service serves nothing.
 */
export async function serviceInstalled(ctx: Context): Promise<boolean> {
  if (ctx.pathEnv.platform === 'win32') return false; // no service support
  try {
    if (!existsSync(unitPathFor(ctx.pathEnv.platform, ctx.pathEnv.home, ctx.pathEnv.env).unitPath)) return false;
  } catch {
    return false;
  }
  return serviceActive({ platform: ctx.pathEnv.platform, uid: typeof process.getuid === 'function' ? process.getuid() : 0 });
}

export const PORT_META = 'broker.port';

export async function endpointFacts(ctx: Context): Promise<EndpointFacts> {
  const meta = ctx.store.getMeta(PORT_META);
  const port = ctx.settings.broker.port ?? (meta ? Number(meta) : null);
  const [daemon, service] = await Promise.all([daemonRunning(ctx), serviceInstalled(ctx)]);
  return { daemon, service, port };
}

/** A free loopback port, for the first enable that needs the endpoint. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether something accepts connections on the endpoint's port. */
export function portAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export const NO_ENDPOINT_REASON =
  'remote entries use the local endpoint only while the daemon runs; it is not running and no service is installed. Run "mcp-token-rotator install-service" (or keep "mcp-token-rotator daemon" running), then "mcp-token-rotator broker enable" again';

/** The target of one entry's conversion: the paths it names and its slot. */
export function targetFor(ctx: Context, slot: string, endpoint: { origin: string; routeSecret: string } | null): BrokerTarget {
  const node = process.execPath;
  const cli = defaultBin();
  return {
    node,
    cli,
    stateDir: ctx.paths.dir,
    slot,
    endpoint,
    endpointMissing: NO_ENDPOINT_REASON,
    headersHelper: shellJoin([node, cli, 'headers', slot, '--state-dir', ctx.paths.dir]),
  };
}

/** The format of a recorded config: the client's, or (project files) from its name. */
export function formatOf(ctx: Context, file: string, client: string): FileFormat {
  const known = ctx.store.listConfigs().find((c) => c.path === file);
  if (known) return known.format as FileFormat;
  const spec = clientById(client);
  return spec.id === 'project' || spec.id === 'shell' ? formatForPath(file) : spec.format;
}

/**
 * Writes a config's new text (already checked writable by the caller's preflight) as a rotation does: same mode and owner, through a symlink to
 * its target, under the client's own lock (Cline, Roo), only if the file still holds the
 * bytes planned from (else ConcurrentChangeError, and the caller re-plans).
 */
export async function writeConfig(snap: ConfigSnapshot, client: string, text: string): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  await withClientLock(clientById(client).lockDir, snap.realPath, () =>
    writeFileAtomic(snap.realPath, data, { mode: snap.stat.mode, uid: snap.stat.uid, gid: snap.stat.gid, expected: snap.bytes }),
  );
}

/**
 * A durable note of the broker operation in progress, so that the next run can tell a
 * conversion that never landed (the entry is still plaintext) from one a client undid.
 */
export const PENDING_META = 'broker.pending';

export interface Pending {
  op: 'enable' | 'disable';
  at: string;
}

export function setPending(ctx: Context, op: Pending['op']): void {
  ctx.store.setMeta(PENDING_META, JSON.stringify({ op, at: ctx.nowIso() } satisfies Pending));
}

export function clearPending(ctx: Context): void {
  ctx.store.db.prepare('DELETE FROM meta WHERE key = ?').run(PENDING_META);
}

export function readPending(ctx: Context): Pending | null {
  const v = ctx.store.getMeta(PENDING_META);
  if (!v) return null;
  try {
    return JSON.parse(v) as Pending;
  } catch {
    return null;
  }
}

export function displayPath(ctx: Context, p: string): string {
  const home = ctx.pathEnv.home;
  return p.startsWith(home + path.sep) ? '~' + p.slice(home.length) : p;
}
