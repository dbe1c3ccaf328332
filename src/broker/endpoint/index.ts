import type { Context } from '../../context.js';
import type { DaemonCore, DaemonService } from '../../daemon/core.js';
import type { BrokerEndpointParams, BrokerTokenParams } from '../../ipc/protocol.js';
import { RotatorError } from '../../errors.js';
import type { Secret } from '../../secret.js';
import type { TokenStore } from '../store.js';
import type { Endpoint } from './server.js';
import type { RouteTable } from './routes.js';
import { SlotTokens } from './tokens.js';

/** The DB meta key holding the endpoint's port when settings `broker.port` is unset (chosen at `broker enable`). */
export const PORT_META = 'broker.port';

/**
 * Broker mode inside the daemon: the slots' current tokens (with the rotation hold) for the
 * control socket's `broker-token`, and the local endpoint for remote entries. Started by the
 * daemon's one hook; cheap when broker mode is unused (no port: no server, no forwarder).
 */
export interface BrokerService {
  /** The slot's current token, after any rotation hold (the control socket's `broker-token`). */
  token(slot: string): Promise<Secret>;
  /** The endpoint's port, once listening. */
  readonly port: number | null;
  /** Listens now if it does not yet (the port is bound before it is returned). */
  listen(): Promise<number>;
  /** The registry's routes changed in this process: reload them at the next request. */
  routesChanged(): void;
  stop(): Promise<void>;
}

/**
 * The store opened on first use, not at daemon start: opening it pins and probes the backend
 * (a keychain round trip), which a daemon whose user never enables broker mode must not do.
 */
function lazyStore(ctx: Context): TokenStore {
  let opened: Promise<TokenStore> | undefined;
  const open = (): Promise<TokenStore> =>
    (opened ??= import('../store.js').then((m) => m.openTokenStore(ctx)).catch((e: unknown) => {
      opened = undefined;
      throw e;
    }));
  // backend/where are labels for status output, which reads the real store, not this one.
  return {
    backend: 'file',
    where: ctx.paths.dir,
    read: async (slot) => (await open()).read(slot),
    write: async (slot, token) => (await open()).write(slot, token),
    remove: async (slot) => (await open()).remove(slot),
  };
}

/**
 * The endpoint's port as the configs know it: the one recorded when entries were converted
 * (or moved to), else settings `broker.port` (the wish for the first one), else none yet.
 */
export function endpointPort(ctx: Context): number | null {
  const v = Number(ctx.store.getMeta(PORT_META));
  if (Number.isInteger(v) && v >= 1024 && v <= 65535) return v;
  return ctx.settings.broker.port ?? null;
}

const portTaken = (e: unknown): boolean => e instanceof RotatorError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';

export interface BrokerStartOptions {
  store?: TokenStore;
  streamIdleTimeoutMs?: number;
  /** Told when the recorded port was taken and the endpoint moved (the daemon notifies). */
  onMoved?: (note: import('../reroute.js').MovedNote, files: string[]) => void;
}

export async function startBroker(ctx: Context, opts: BrokerStartOptions = {}): Promise<BrokerService> {
  const log = ctx.log;
  const tokens = new SlotTokens(opts.store ?? lazyStore(ctx));
  let endpoint: Endpoint | null = null;
  let routes: RouteTable | null = null;
  let listening: Promise<number> | null = null;

  const listen = async (port: number): Promise<Endpoint> => {
    const [{ startEndpoint }, { RouteTable: Table }, { BrokerRegistry }] = await Promise.all([import('./server.js'), import('./routes.js'), import('../registry.js')]);
    const registry = new BrokerRegistry(ctx.store);
    routes ??= new Table(
      () =>
        registry
          .entries()
          .filter((e) => e.kind === 'endpoint' && e.routeSecret && e.upstreamUrl)
          .map((e) => ({ id: e.id, name: e.server, slot: e.slot, upstreamUrl: e.upstreamUrl as string, routeSecret: e.routeSecret as string })),
      // Another process's commit (broker enable) is seen at the next miss, not after a TTL.
      { version: () => ctx.store.db.pragma('data_version', { simple: true }) as number },
    );
    const table = routes;
    return startEndpoint({
      port,
      lookup: (s) => table.lookup(s),
      tokens,
      log,
      ...(opts.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: opts.streamIdleTimeoutMs } : {}),
    });
  };

  /**
   * Start: the recorded port. Taken (another user bound it while the daemon was down): it is
   * never left in the configs. The endpoint listens on a port the system picks, every entry
   * gets a new route secret (whoever holds the old port has seen the old ones), and the
   * configs are rewritten to the new URL.
   */
  const port = endpointPort(ctx);
  try {
    if (port !== null) {
      try {
        endpoint = await listen(port);
      } catch (e) {
        // Configs name this port (recorded, or entries converted by a version that did not
        // record a `broker.port` setting): move. Only a configured port no entry uses yet fails loudly.
        const { BrokerRegistry } = await import('../registry.js');
        const named = ctx.store.getMeta(PORT_META) !== null || new BrokerRegistry(ctx.store).entries().some((r) => r.kind === 'endpoint');
        if (!portTaken(e) || !named) throw e;
        endpoint = await listen(0);
        const { renewRoutes, MOVED_META } = await import('../reroute.js');
        const { listenerUid } = await import('./owner.js');
        const note = { from: port, to: endpoint.port, at: ctx.nowIso(), holderUid: await listenerUid(port) };
        ctx.store.setMeta(MOVED_META, JSON.stringify(note));
        const r = await renewRoutes(ctx, { port: endpoint.port, invalidate: () => routes?.invalidate() });
        log.warn(
          { from: port, to: endpoint.port, holderUid: note.holderUid, files: r.files, problems: r.problems },
          `the broker endpoint's port ${port} was taken by another program; moved to ${endpoint.port} with new route secrets and rewrote ${r.files.length} config(s). Clients still connected to port ${port} were talking to that program: restart them if they do not reload their config.`,
        );
        for (const n of r.notes) log.warn({ note: n }, 'config made private');
        opts.onMoved?.(note, r.files);
      }
      listening = Promise.resolve(endpoint.port);
    }
    // A renewal a crash interrupted is finished; configs holding route secrets are made private.
    if (endpoint) {
      const { finishReroute } = await import('../reroute.js');
      const r = await finishReroute(ctx).catch((e: unknown) => ({ files: [], notes: [], problems: [(e as Error).message] }));
      for (const n of r.notes) log.warn({ note: n }, 'config made private');
      for (const p of r.problems) log.error({ problem: p }, 'broker endpoint routes');
    }
  } catch (e) {
    tokens.close();
    await endpoint?.close();
    throw e;
  }

  return {
    get port() {
      return endpoint?.port ?? null;
    },
    listen() {
      // One bind at a time; the port is bound before anyone learns it.
      listening ??= (async () => {
        const p = endpointPort(ctx) ?? 0;
        endpoint = await listen(p);
        return endpoint.port;
      })().catch((e: unknown) => {
        listening = null;
        throw e;
      });
      return listening;
    },
    routesChanged() {
      routes?.invalidate();
    },
    async token(slot) {
      const t = await tokens.get(slot);
      if (!t) {
        throw new RotatorError('E_BROKER', `No token is stored for broker slot ${slot}.`, {
          hint: 'Run "mcp-token-rotator broker status"; "broker disable" puts the token back in the configs.',
        });
      }
      return t;
    },
    async stop() {
      tokens.close();
      await endpoint?.close();
    },
  };
}

const running = new WeakMap<Context, BrokerService>();

/** The running endpoint's port in this process (the daemon), or null: what heal may write. */
export function listeningPort(ctx: Context): number | null {
  return running.get(ctx)?.port ?? null;
}

/** The registry's routes changed in this process (a renewal): the endpoint reloads them. */
export function routesChanged(ctx: Context): void {
  running.get(ctx)?.routesChanged();
}

/**
 * The daemon's first start-up step, before crash recovery: endpoint clients are served as soon
 * as possible (a recovery's rotation holds their calls instead of leaving them refused), a
 * taken port is moved off before anything else runs, and `broker-token` is served as soon as
 * the control socket is.
 */
export async function brokerStep(core: DaemonCore): Promise<DaemonService> {
  const b = await startBroker(core.ctx, {
    onMoved: (n, files) =>
      core.notify(
        'mcp-token-rotator: endpoint port was taken',
        `Port ${n.from} was held by another program${n.holderUid != null ? ` (uid ${n.holderUid})` : ''}; the local endpoint moved to ${n.to} with new route secrets (${files.length} config(s) rewritten). Restart MCP clients that do not reload their config.`,
      ),
  });
  running.set(core.ctx, b);
  return {
    name: 'broker',
    stop: async () => {
      running.delete(core.ctx);
      await b.stop();
    },
  };
}

const notUp = () => new RotatorError('E_DAEMON_RUNNING', 'The daemon is starting or stopping; broker mode is not up.', { hint: 'Ask again in a moment (wrappers and the headers helper fall back to the token store).' });

/** The control socket's `broker-token`: `{ token }` after any rotation hold. */
export async function brokerTokenHandler(req: { params: BrokerTokenParams }, core: DaemonCore): Promise<{ token: string }> {
  const b = running.get(core.ctx);
  if (!b) throw notUp();
  return { token: (await b.token(req.params.slot)).reveal() };
}

/**
 * The control socket's `broker-endpoint`: the port the endpoint listens on (null: none), and
 * with `listen: true` it listens first (on the recorded or configured port, else one the
 * system picks), so `broker enable` writes only URLs of a port that is already bound.
 */
export async function brokerEndpointHandler(req: { params: BrokerEndpointParams }, core: DaemonCore): Promise<{ port: number | null }> {
  const b = running.get(core.ctx);
  if (!b) throw notUp();
  if (req.params.listen === true) return { port: await b.listen() };
  return { port: b.port };
}
