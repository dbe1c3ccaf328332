import { setFlagsFromString } from 'node:v8';
import { Context } from '../../context.js';
import { createLogger, prettySink } from '../../log.js';
import type { Values } from '../commands.js';

/**
 * V8's tiers above the baseline compiler (Sparkplug) are off in the daemon: what runs often
 * there (a forwarded call through the local endpoint, a token check) touches a lot of code
 * once per call and gets no faster from them on a machine where each call starts with cold
 * caches, while their code and zones stay resident once used. Same run, `node bench/run.mjs
 * --only=endpoint`: idle daemon with broker mode on 55.8 -> 51.5 MiB, without broker mode (62
 * configs) 59.2 -> 53.5 MiB; the endpoint's overhead per call +0.82 / +0.92 ms (within the
 * run-to-run spread), the daemon's CPU per forwarded call 1.14 / 1.04 ms (docs/benchmarks.md).
 * At run time, not in the service's node options: an unknown flag on the command line stops
 * node, here it is ignored (a Node whose V8 no longer has it runs as before).
 */
export const DAEMON_MAX_OPT = '--max-opt=1';

export async function run(values: Values): Promise<number> {
  setFlagsFromString(DAEMON_MAX_OPT);
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
