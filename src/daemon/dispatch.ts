import { RotatorError } from '../errors.js';
import type { Method, Request } from '../ipc/protocol.js';
import { revokeNowOp, rotateOp, setTokenOp } from '../operations.js';
import { Secret } from '../secret.js';
import type { DaemonCore } from './core.js';

type RequestOf<M extends Method> = Extract<Request, { method: M }>;

/**
 * The control socket's methods, one entry each. A method added to the protocol's `Method`
 * union fails to compile until it has an entry here; a feature that serves its own methods
 * passes them to `createDispatcher` (they override or extend these).
 */
export type Handlers = { [M in Method]: (req: RequestOf<M>, core: DaemonCore) => Promise<unknown> };

export const HANDLERS: Handlers = {
  ping: () => Promise.resolve({ pid: process.pid }),
  rotate: (req, core) => core.mutate('after rotate', () => rotateOp(core.ctx, { ...req.params, source: 'manual' })),
  // A leak leaks the route secrets of the configs too: they are renewed after the tokens.
  'revoke-now': (_req, core) => core.mutate('after revoke-now', async () => (await import('../broker/reroute.js')).renewAfterRevoke(core.ctx, await revokeNowOp(core.ctx))),
  'set-token': (req, core) => core.mutate('after set-token', () => setTokenOp(core.ctx, new Secret(req.params.token), req.params.fingerprint)),
  // Not queued: during a rotation it waits on the hold, which the queued rotation ends.
  'broker-token': async (req, core) => (await import('../broker/endpoint/index.js')).brokerTokenHandler(req, core),
  // Not queued either: broker enable asks it while holding the rotation lock.
  'broker-endpoint': async (req, core) => (await import('../broker/endpoint/index.js')).brokerEndpointHandler(req, core),
};

export function createDispatcher(core: DaemonCore, handlers: Handlers = HANDLERS): (req: Request) => Promise<unknown> {
  return async (req) => {
    if (core.stopping) throw new RotatorError('E_DAEMON_RUNNING', 'The daemon is shutting down.', { hint: 'Run the command again in a moment.' });
    const h = handlers[req.method] as (r: Request, c: DaemonCore) => Promise<unknown>;
    return h(req, core);
  };
}
