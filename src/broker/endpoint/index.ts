import type { Context } from '../../context.js';
import type { DaemonCore, DaemonService } from '../../daemon/core.js';
import type { BrokerTokenParams } from '../../ipc/protocol.js';
import { RotatorError } from '../../errors.js';
import type { Secret } from '../../secret.js';
import type { TokenStore } from '../store.js';
import type { Endpoint } from './server.js';
import { SlotTokens } from './tokens.js';

/** The DB meta key holding the endpoint's port when settings `broker.port` is unset (chosen at `broker enable`). */
export const PORT_META = 'broker.port';

/** How often a daemon with no port yet looks for one recorded by `broker enable`. */
const PORT_POLL_MS = 3_000;

/**
 * Broker mode inside the daemon: the slots' current tokens (with the rotation hold) for the
 * control socket's `broker-token`, and the local endpoint for remote entries. Started by the
 * daemon's one hook; cheap when broker mode is unused (no port: no server, no undici).
 */
export interface BrokerService {
  /** The slot's current token, after any rotation hold (the control socket's `broker-token`). */
  token(slot: string): Promise<Secret>;
  /** The endpoint's port, once listening. */
  readonly port: number | null;
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

export function endpointPort(ctx: Context): number | null {
  if (ctx.settings.broker.port !== undefined) return ctx.settings.broker.port;
  const v = Number(ctx.store.getMeta(PORT_META));
  return Number.isInteger(v) && v >= 1024 && v <= 65535 ? v : null;
}

export async function startBroker(ctx: Context, opts: { store?: TokenStore; streamIdleTimeoutMs?: number } = {}): Promise<BrokerService> {
  const log = ctx.log;
  const tokens = new SlotTokens(opts.store ?? lazyStore(ctx));
  let endpoint: Endpoint | null = null;
  let poll: NodeJS.Timeout | undefined;
  let stopped = false;

  const listen = async (port: number): Promise<void> => {
    const [{ startEndpoint }, { RouteTable }, { BrokerRegistry }] = await Promise.all([import('./server.js'), import('./routes.js'), import('../registry.js')]);
    const registry = new BrokerRegistry(ctx.store);
    const routes = new RouteTable(() =>
      registry
        .entries()
        .filter((e) => e.kind === 'endpoint' && e.routeSecret && e.upstreamUrl)
        .map((e) => ({ name: e.server, slot: e.slot, upstreamUrl: e.upstreamUrl as string, routeSecret: e.routeSecret as string })),
    );
    endpoint = await startEndpoint({
      port,
      lookup: (s) => routes.lookup(s),
      tokens,
      log,
      ...(opts.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: opts.streamIdleTimeoutMs } : {}),
    });
  };

  const port = endpointPort(ctx);
  if (port !== null) {
    // At start a taken port is fatal: clients pointed at it would talk to someone else.
    try {
      await listen(port);
    } catch (e) {
      tokens.close();
      throw e;
    }
  } else {
    poll = setInterval(() => {
      if (stopped || endpoint) return;
      const p = endpointPort(ctx);
      if (p === null) return;
      clearInterval(poll);
      listen(p).catch((e: unknown) => log.error({ port: p, err: e instanceof RotatorError ? e.describe() : String(e) }, 'broker endpoint could not start'));
    }, PORT_POLL_MS);
    poll.unref();
  }

  return {
    get port() {
      return endpoint?.port ?? null;
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
      stopped = true;
      clearInterval(poll);
      tokens.close();
      await endpoint?.close();
    },
  };
}

const running = new WeakMap<Context, BrokerService>();

/**
 * The daemon's start-up step (first, so a taken port fails the start before anything else
 * listens, and `broker-token` is served as soon as the control socket is).
 */
export async function brokerStep(core: DaemonCore): Promise<DaemonService> {
  const b = await startBroker(core.ctx);
  running.set(core.ctx, b);
  return {
    name: 'broker',
    stop: async () => {
      running.delete(core.ctx);
      await b.stop();
    },
  };
}

/** The control socket's `broker-token`: `{ token }` after any rotation hold. */
export async function brokerTokenHandler(req: { params: BrokerTokenParams }, core: DaemonCore): Promise<{ token: string }> {
  const b = running.get(core.ctx);
  if (!b) throw new RotatorError('E_DAEMON_RUNNING', 'The daemon is starting or stopping; broker mode is not up.', { hint: 'Ask again in a moment (wrappers and the headers helper fall back to the token store).' });
  return { token: (await b.token(req.params.slot)).reveal() };
}
