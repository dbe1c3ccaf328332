import { UsageError } from '../../errors.js';
import { COMMANDS, type Values } from '../commands.js';
import { SHELLS, completionScript, type Shell } from '../completion.js';
import { printJson } from '../output.js';

/** completion bash|zsh|fish: the script on stdout (with --json: { shell, script }). */
export async function run(values: Values, positionals: string[] = []): Promise<number> {
  const [shell, ...extra] = positionals;
  if (shell === undefined || extra.length > 0 || !(SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(
      shell === undefined ? `completion needs the shell: one of ${SHELLS.join(', ')}.` : `completion takes one shell (${SHELLS.join(', ')}); the value you passed is not one (not shown: it could be a token).`,
    );
  }
  const script = completionScript(shell as Shell, COMMANDS);
  // The script is code for the shell, not a report: written as is (it holds no token).
  if (values.json) printJson({ shell, script });
  else process.stdout.write(script);
  return 0;
}
