#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT, RotatorError, UsageError, errorMessage } from '../errors.js';
import { err } from './output.js';
import { dropCoreDumpMemory } from '../process/core-dumps.js';
import { COMMANDS, type CommandSpec, globalHelp, commandHelp } from './commands.js';

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    // Not asked for: a usage error, so the help goes where errors go.
    process.stderr.write(globalHelp());
    return EXIT.usage;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(globalHelp());
    return EXIT.ok;
  }
  if (first === 'help') {
    // `help <command>` is `<command> --help`.
    const [name = ''] = rest;
    const target = COMMANDS.find((c) => c.name === name);
    if (target) {
      process.stdout.write(commandHelp(target));
      return EXIT.ok;
    }
    const { unknownCommandLines } = await import('./suggest.js');
    for (const line of unknownCommandLines(name, COMMANDS.map((c) => c.name))) err(line);
    return EXIT.usage;
  }
  if (first === '--version' || first === '-v') {
    const v = (await import('../version.js')).packageVersion();
    process.stdout.write(rest.includes('--json') ? JSON.stringify({ version: v, node: process.version }, null, 2) + '\n' : `${v}\n`);
    return EXIT.ok;
  }
  const spec: CommandSpec | undefined = COMMANDS.find((c) => c.name === first);
  if (!spec) {
    const { unknownCommandLines } = await import('./suggest.js');
    for (const line of unknownCommandLines(first, COMMANDS.map((c) => c.name))) err(line);
    return EXIT.usage;
  }
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...spec.options }, strict: true, allowPositionals: spec.positionals === true }) as {
      values: Record<string, string | boolean | undefined>;
      positionals: string[];
    });
  } catch (e) {
    err(`${first}: ${(e as Error).message}`);
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

// Before any token is read: no process memory in a core dump (see src/process/core-dumps.ts).
dropCoreDumpMemory();

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    err(`error: ${errorMessage(e)}`);
    process.exitCode = EXIT.failure;
  },
);
