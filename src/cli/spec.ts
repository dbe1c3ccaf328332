// A command's shape and its --help text: no command list here, so the `exec` and `headers`
// entries (src/cli/entry-exec.ts, entry-headers.ts) load this without every other command.
import type { ParseArgsConfig } from 'node:util';

export type Values = Record<string, string | boolean | undefined>;
export interface CommandModule {
  /** `positionals`: the words after the command name, for a spec that declares `positionals`. */
  run(values: Values, positionals?: string[]): Promise<number>;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  details: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Takes positional arguments (subcommands; everything after "--"). */
  positionals?: boolean;
  /** Shell completion: what the first positional may be (subcommands, a shell name). */
  words?: readonly string[];
  /** Shell completion: the words after "--" are another command line, completed as one. */
  passthrough?: boolean;
  load(): Promise<CommandModule>;
}

export const COMMON = `Common options:
  --json           One JSON document on stdout; messages go to stderr.
  --config FILE    Settings file (default: the per-OS path, see docs/clients.md).
  -h, --help       This help.
`;

export function commandHelp(c: CommandSpec): string {
  return `Usage: mcp-token-rotator ${c.usage} [--json] [--config FILE]

${c.summary}

${c.details}

${COMMON}`;
}
