import { Context, type ContextOptions } from '../context.js';
import type { Values } from './commands.js';
import { brokerPort } from '../broker/rotation-port.js';

/**
 * Opens the context for one command and closes it afterwards. Commands that touch the
 * store first finish any rotation a crash left unfinished (contract guarantee 2).
 */
export async function withContext<T>(values: Values, fn: (ctx: Context) => Promise<T>, opts: ContextOptions & { recover?: boolean } = {}): Promise<T> {
  const ctx = new Context({ ...opts, ...(typeof values.config === 'string' ? { configFile: values.config } : {}) });
  try {
    if (opts.recover !== false) {
      const { recoverIfNeeded } = await import('../rotation/recover.js');
      await recoverIfNeeded(ctx, { broker: brokerPort });
    }
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
