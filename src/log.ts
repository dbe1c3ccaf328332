import { createRequire } from 'node:module';
import type { Logger, LoggerOptions } from 'pino';
import type pinoType from 'pino';
import { scrubSecrets } from './secret.js';
import { termSafe } from './terminal.js';

// Loaded on first use: a command that logs nothing should not pay for pino.
let pinoFn: typeof pinoType | undefined;
function pino(): typeof pinoType {
  return (pinoFn ??= createRequire(import.meta.url)('pino') as typeof pinoType);
}

export type { Logger };

export interface CreateLoggerOptions {
  /** 'stdout' for the daemon (journald/launchd capture it), 'stderr' for CLI commands. */
  destination?: 'stdout' | 'stderr';
  level?: string;
  /** Tests pass a sink to capture every line. */
  sink?: { write(line: string): void };
}

/**
 * pino with token redaction by construction: tokens travel as `Secret` objects that
 * serialise to their fingerprint, and every finished line is also scrubbed of any token
 * value this process has seen, in case one slips in through an error message.
 */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const fd = opts.destination === 'stdout' ? 1 : 2;
  const base: LoggerOptions = {
    level: opts.level ?? process.env.MCP_TOKEN_ROTATOR_LOG_LEVEL ?? 'info',
    base: { name: 'mcp-token-rotator', pid: process.pid },
    timestamp: pino().stdTimeFunctions.isoTime,
    // Belt and braces: any field that is obviously a token value is censored.
    redact: { paths: ['token', '*.token', 'newToken', 'oldToken', 'authorization', '*.authorization'], censor: '[redacted]' },
    hooks: {
      streamWrite: (s: string) => scrubSecrets(s),
    },
  };
  if (opts.sink) return pino()(base, opts.sink);
  return pino()(base, pino().destination({ fd, sync: true }));
}


const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Readable lines for a terminal; journald and launchd get the JSON lines. */
export function prettySink(out: { write(s: string): unknown }): { write(line: string): void } {
  return {
    write(line: string) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { time, level, msg, name: _n, pid: _p, ...rest } = o;
      const extras = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? termSafe(v) : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${String(time ?? '').slice(11, 19)} ${(LEVELS[level as number] ?? String(level)).padEnd(5)} ${termSafe(String(msg ?? ''))}${extras ? `  ${extras}` : ''}\n`);
    },
  };
}
