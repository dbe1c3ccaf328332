#!/usr/bin/env node
import { EXIT } from '../errors.js';
import { err } from './output.js';
import { COMMANDS, type CommandSpec, globalHelp, commandHelp } from './commands.js';
import { runCommand, startCli } from './run-command.js';

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
  return runCommand(spec, rest);
}

startCli(() => main(process.argv.slice(2)));
