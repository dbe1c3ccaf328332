import { Context } from '../../context.js';
import { createLogger, prettySink } from '../../log.js';
import type { Values } from '../commands.js';

export async function run(values: Values): Promise<number> {
  const logger = createLogger({ destination: 'stdout', level: process.env.MCP_TOKEN_ROTATOR_LOG_LEVEL ?? 'info', ...(process.stdout.isTTY ? { sink: prettySink(process.stdout) } : {}) });
  const ctx = new Context({ logger, ...(typeof values.config === 'string' ? { configFile: values.config } : {}) });
  const { startDaemon } = await import('../../daemon/daemon.js');
  const d = await startDaemon(ctx);
  const onSignal = (sig: NodeJS.Signals) => void d.stop(sig);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await d.done;
  return 0;
}
