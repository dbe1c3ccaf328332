import { Context } from '../context.js';
import { RotatorError } from '../errors.js';
import type { Request, RotateResponse, WireError } from '../ipc/protocol.js';
import type { Values } from './commands.js';
import { withContext } from './session.js';

type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * rotate, revoke-now and set-token: through the daemon's socket when one runs (so only one
 * process writes), otherwise here, under the same lock, after finishing any journaled work.
 */
export async function mutate(values: Values, req: Outgoing, local: (ctx: Context) => Promise<RotateResponse>): Promise<{ ctx: Context; res: RotateResponse }> {
  const probe = new Context(typeof values.config === 'string' ? { configFile: values.config } : {});
  const { callDaemon } = await import('../ipc/client.js');
  const { installInterruptGuard, setIdleNote } = await import('../rotation/interrupt.js');
  installInterruptGuard();
  setIdleNote('Interrupted (Ctrl-C). If the daemon had the request, it carries on and writes every config; see "mcp-token-rotator history" for the result.');
  const remote = await callDaemon(probe.paths.socket, req);
  if (remote) {
    await probe.close();
    if (!remote.ok) throw fromWire(remote.error);
    return { ctx: probe, res: remote.result as RotateResponse };
  }
  await probe.close();
  setIdleNote('Interrupted (Ctrl-C): no rotation was in progress; nothing was regenerated and no config was changed by this run.');
  let ctxOut: Context | undefined;
  const res = await withContext(values, async (ctx) => {
    ctxOut = ctx;
    return local(ctx);
  });
  return { ctx: ctxOut as Context, res };
}

export function fromWire(e: WireError): RotatorError {
  return new RotatorError(e.code as RotatorError['code'], e.message, { ...(e.hint ? { hint: e.hint } : {}), ...(e.file ? { file: e.file } : {}) });
}
