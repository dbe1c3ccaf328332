import { Context } from '../../context.js';
import { createLogger, prettySink } from '../../log.js';
import type { Values } from '../commands.js';

// The daemon runs without V8's optimizing tiers: set by boot.cjs (scripts/boot.cjs), before
// the bundle loads.
export async function run(values: Values): Promise<number> {
  const logger = createLogger({ destination: 'stdout', level: process.env.MCP_TOKEN_ROTATOR_LOG_LEVEL ?? 'info', ...(process.stdout.isTTY ? { sink: prettySink(process.stdout) } : {}) });
  const { installDaemonSignals } = await import('../../daemon/signals.js');
  const signals = installDaemonSignals(logger);
  const ctx = new Context({ logger, ...(typeof values.config === 'string' ? { configFile: values.config } : {}) });
  const { startDaemon } = await import('../../daemon/daemon.js');
  // Test knob: a faster scheduler tick and API backoff (the defaults are 60 s and 30 s).
  const tickMs = Number(process.env.MCP_TOKEN_ROTATOR_TICK_MS) || undefined;
  const d = await startDaemon(ctx, tickMs ? { tickMs, times: { backoffBaseMs: tickMs } } : {});
  signals.attach(d);
  await d.done;
  return 0;
}
