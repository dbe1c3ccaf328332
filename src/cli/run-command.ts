// One command's run, from its arguments to its exit code: parse the options (never echoing what
// was typed), --help, load the command, report its error. Shared by main.ts (every command) and
// the small entries of `exec` and `headers` (entry-exec.ts, entry-headers.ts), so both paths
// give the same help, usage errors, messages and exit codes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT, RotatorError, UsageError, errorMessage } from '../errors.js';
import { err } from './output.js';
import { dropCoreDumpMemory } from '../process/core-dumps.js';
import { commandHelp, type CommandSpec } from './spec.js';

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** `rest`: the words after the command's name. */
export async function runCommand(spec: CommandSpec, rest: string[]): Promise<number> {
  const first = spec.name;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...spec.options }, strict: true, allowPositionals: spec.positionals === true }) as {
      values: Record<string, string | boolean | undefined>;
      positionals: string[];
    });
  } catch (e) {
    // Never echo what was typed: it could be a pasted token (src/cli/argv-safety.ts).
    const { safeParseError, setTokenArgumentMessage } = await import('./argv-safety.js');
    const pe = e as { code?: string; message: string };
    if (first === 'set-token' && pe.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const m = setTokenArgumentMessage();
      err(`error: ${m.message}`);
      err(`  -> ${m.hint}`);
      return EXIT.usage;
    }
    err(safeParseError(first, pe));
    err(usageLine(spec));
    err(`Run "mcp-token-rotator ${first} --help" for usage.`);
    return EXIT.usage;
  }
  if (values.help) {
    process.stdout.write(commandHelp(spec));
    return EXIT.ok;
  }
  try {
    const mod = await spec.load();
    return await mod.run(values, positionals);
  } catch (e) {
    const code = reportError(e, values.json === true);
    if (e instanceof UsageError) err(usageLine(spec));
    return code;
  }
}

function usageLine(spec: CommandSpec): string {
  return `Usage: mcp-token-rotator ${spec.usage} [--json] [--config FILE]`;
}

function reportError(e: unknown, json: boolean): number {
  if (e instanceof RotatorError) {
    err(`error: ${e.describe()}`);
    if (json) process.stdout.write(JSON.stringify({ error: e.toJSON() }, null, 2) + '\n');
    return e instanceof UsageError ? EXIT.usage : e.exitCode;
  }
  err(`error: ${errorMessage(e)}`);
  if (process.env.MCP_TOKEN_ROTATOR_DEBUG && e instanceof Error && e.stack) err(e.stack);
  err('This is unexpected; please report it with the output of "mcp-token-rotator doctor".');
  if (json) process.stdout.write(JSON.stringify({ error: { code: 'E_INTERNAL', message: errorMessage(e) } }, null, 2) + '\n');
  return EXIT.failure;
}

/** A CLI process's start: what every entry does before and after its command. */
export function startCli(run: () => Promise<number>): void {
  // Before any token is read: no process memory in a core dump (see src/process/core-dumps.ts).
  dropCoreDumpMemory();
  // The built CLI is bundled (scripts/bundle.mjs); the source maps turn stack traces back into
  // src/ lines, at a cost paid only when asked for.
  if (process.env.MCP_TOKEN_ROTATOR_DEBUG) process.setSourceMapsEnabled(true);
  run().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      err(`error: ${errorMessage(e)}`);
      process.exitCode = EXIT.failure;
    },
  );
}
