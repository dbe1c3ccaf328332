import type { Context } from '../context.js';
import { RotatorError } from '../errors.js';
import { BrokerRegistry } from './registry.js';
import { openTokenStore, type TokenStore } from './store.js';

const stores = new WeakMap<Context, Promise<TokenStore>>();

/**
 * The daemon's answer to an exec wrapper's `broker-token` request: the slot's current token
 * from the store. The daemon runs with the user's full session (D-Bus included), which a
 * wrapper started by a GUI client with a minimal environment may lack.
 */
export async function brokerToken(ctx: Context, slot: string): Promise<{ token: string }> {
  if (!new BrokerRegistry(ctx.store).slot(slot)) {
    throw new RotatorError('E_BROKER', `No broker slot named ${slot}.`, { hint: 'Run "mcp-token-rotator broker status"; "broker enable" converts the entry again.' });
  }
  let p = stores.get(ctx);
  if (!p) {
    p = openTokenStore(ctx);
    stores.set(ctx, p);
    p.catch(() => stores.delete(ctx));
  }
  const token = await (await p).read(slot);
  if (!token) throw new RotatorError('E_BROKER_STORE', `The token store holds no token for slot ${slot}.`, { hint: 'Run "mcp-token-rotator broker status" and "broker enable" again.' });
  return { token: token.reveal() };
}
