/**
 * What broker enable, disable, status and heal share: the token store, whether a local
 * endpoint can be relied on, the paths a converted entry names, and writing one config
 * with a rotation's care (client lock, atomic compare-before-rename, read-back).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Context } from '../context.js';
import { formatForPath } from '../clients/catalog.js';
import type { FileFormat } from '../clients/formats.js';
import type { ConfigSnapshot } from '../clients/discover.js';
import { writeFileAtomic } from '../clients/write.js';
import { clientById } from '../clients/catalog.js';
import { withClientLock } from '../rotation/rewrite.js';
import { openTokenStore, type TokenStore } from './store.js';
import { BIN_NAME, type BrokerTarget } from './convert/convert.js';
import { portAnswers } from './port-probe.js';
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

export { portAnswers };

export interface EndpointOwner {
  /** Something accepts connections on the port. */
  answers: boolean;
  /** ...and it is not this user's daemon (the daemon says it listens elsewhere or not at all, or Linux names another uid). */
  stranger: boolean;
  /** Linux: the uid listening there, when known. */
  holderUid: number | null;
}

/**
 * Who answers on the endpoint's port. Only the daemon serves the endpoint, and a port has one
 * listener: so it is the daemon's exactly when the daemon (asked on its control socket, which
 * only this user reaches) says it listens on that port. On Linux the listener's uid is named too.
 */
export async function endpointOwner(ctx: Context, port: number, daemon: boolean): Promise<EndpointOwner> {
  const answers = await portAnswers(port);
  if (!answers) return { answers, stranger: false, holderUid: null };
  const { listenerUid } = await import('./endpoint/owner.js');
  const holderUid = await listenerUid(port);
  let daemonPort: number | null = null;
  if (daemon) {
    const { callDaemon } = await import('../ipc/client.js');
    const r = await callDaemon(ctx.paths.socket, { method: 'broker-endpoint', params: {} }, { timeoutMs: 3000 }).catch(() => null);
    if (r?.ok) daemonPort = (r.result as { port: number | null }).port;
  }
  const own = process.getuid?.();
  const stranger = daemonPort !== port || (holderUid !== null && own !== undefined && holderUid !== own);
  return { answers, stranger, holderUid };
}

export const NO_ENDPOINT_REASON =
  'remote entries use the local endpoint only while the daemon runs; it is not running and no service is installed. Run "mcp-token-rotator install-service" (or keep "mcp-token-rotator daemon" running), then "mcp-token-rotator broker enable" again';

export const SERVICE_SILENT_REASON =
  'remote entries use the local endpoint, which only the running daemon serves; the service is installed but its daemon does not answer. Start it ("systemctl --user start mcp-token-rotator", or "launchctl kickstart gui/$(id -u)/mcp-token-rotator"), then run "mcp-token-rotator broker enable" again';

/**
 * The running daemon's endpoint, listening: the daemon binds the port itself (no window in
 * which the port is chosen but free), and the port must answer here before any config is
 * written with its URL. `reason` says why there is none (the entry then stays plaintext).
 */
export async function liveEndpoint(ctx: Context): Promise<{ port: number; reason?: undefined } | { port: null; reason: string }> {
  const { callDaemon } = await import('../ipc/client.js');
  const r = await callDaemon(ctx.paths.socket, { method: 'broker-endpoint', params: { listen: true } }, { timeoutMs: 15_000 }).catch((e: unknown) => ({
    ok: false as const,
    error: { message: (e as Error).message },
  }));
  if (r === null) return { port: null, reason: NO_ENDPOINT_REASON };
  if (!r.ok) return { port: null, reason: `the daemon could not open the local endpoint (${r.error.message}); fix that (see the daemon's log), then run "mcp-token-rotator broker enable" again` };
  const port = (r.result as { port: number | null }).port;
  if (port === null || !(await portAnswers(port, 3000))) {
    return { port: null, reason: `the daemon's local endpoint does not answer on 127.0.0.1:${port ?? '?'}; check the daemon's log, then run "mcp-token-rotator broker enable" again` };
  }
  return { port };
}

export const PORTABLE_NO_ENDPOINT_REASON =
  'this is a project-scoped config (shared with others, or committed): the local endpoint URL would put this user\'s port and route secret (a credential) in it. Keep the token out of it by hand (e.g. an environment variable your client expands), or use a user-level config for this server';

/** The target of one entry's conversion: the paths it names and its slot; `portable`: none of them (convert.ts portableEntry). */
export function targetFor(
  ctx: Context,
  slot: string,
  endpoint: { origin: string; routeSecret: string } | null,
  opts: { portable?: boolean; endpointMissing?: string } = {},
): BrokerTarget {
  const node = process.execPath;
  const cli = defaultBin();
  return {
    node,
    cli,
    stateDir: ctx.paths.dir,
    slot,
    // A shared (project) file must not carry this user's port and route secret (a credential).
    endpoint: opts.portable ? null : endpoint,
    endpointMissing: opts.portable ? PORTABLE_NO_ENDPOINT_REASON : (opts.endpointMissing ?? NO_ENDPOINT_REASON),
    headersHelper: opts.portable ? shellJoin([BIN_NAME, 'headers', slot]) : shellJoin([node, cli, 'headers', slot, '--state-dir', ctx.paths.dir]),
    ...(opts.portable ? { portable: true } : {}),
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
export async function writeConfig(snap: ConfigSnapshot, client: string, text: string, opts: { mode?: number } = {}): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  await withClientLock(clientById(client).lockDir, snap.realPath, () =>
    writeFileAtomic(snap.realPath, data, { mode: opts.mode ?? snap.stat.mode, uid: snap.stat.uid, gid: snap.stat.gid, expected: snap.bytes }),
  );
}

/**
 * A config that holds a route secret is a credential, like one holding a token: group and
 * others lose every bit (the owner's stay). Returns the mode to write and, when it narrows,
 * the line that tells the user (the same words whichever command wrote the file).
 */
export function privateMode(file: string, mode: number): { mode: number; note: string | null } {
  const m = mode & 0o7777;
  const narrowed = m & ~0o077;
  if (narrowed === m) return { mode: m, note: null };
  const oct = (x: number) => x.toString(8).padStart(4, '0');
  return { mode: narrowed, note: `${file} holds a route secret of the local endpoint (a credential) and was readable or writable by others (mode ${oct(m)}): it is now ${oct(narrowed)}.` };
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
