import { EXIT, RotatorError, UsageError } from '../../errors.js';
import { err } from '../output.js';
import type { Values } from '../commands.js';

/**
 * Claude Code's `headersHelper`: prints `{"Authorization":"Bearer <token>"}` on stdout and
 * nothing else there; every message goes to stderr. Kept light (lazy imports, no Context):
 * Claude Code runs it at every connect and reconnect and kills it at 10 s.
 */
export async function run(values: Values, positionals: string[] = []): Promise<number> {
  const [slot, extra] = positionals;
  if (slot === undefined || slot === '') throw new UsageError('headers needs the broker slot name, as written in the headersHelper line.');
  if (extra !== undefined) throw new UsageError(`headers takes one slot name; unexpected "${extra}".`);
  const { SLOT_PATTERN } = await import('../../broker/registry.js');
  if (!SLOT_PATTERN.test(slot)) throw new UsageError(`"${slot}" is not a broker slot name (like certorix-1a2b3c4d).`);
  const { stateDir, currentPathEnv } = await import('../../paths.js');
  const dir = typeof values['state-dir'] === 'string' && values['state-dir'] !== '' ? values['state-dir'] : stateDir(currentPathEnv());
  const { waitForRotation, slotToken, headersJson } = await import('../../broker/headers.js');
  const t0 = Date.now();
  const w = await waitForRotation(dir, slot);
  if (w.timedOut) err(`headers: a rotation of ${slot} did not finish within ${w.waitedMs} ms; printing the stored token.`);
  // What is left of Claude Code's 10 s, with room for the process to start and exit.
  const left = Math.max(500, 8_000 - (Date.now() - t0));
  try {
    const { token } = await slotToken(dir, slot, { daemonTimeoutMs: left });
    // Exactly the JSON object: no newline, nothing else (Claude Code parses stdout as JSON).
    // Written directly: output.ts scrubs token values, and this is the one place one must go out.
    process.stdout.write(headersJson(token));
    return EXIT.ok;
  } catch (e) {
    if (e instanceof RotatorError) throw e;
    throw new RotatorError('E_BROKER', `Could not read the token of broker slot ${slot}: ${e instanceof Error ? e.message : String(e)}.`, {
      hint: 'Run "mcp-token-rotator broker status" and "mcp-token-rotator doctor"; "broker disable" puts the token back in the configs.',
    });
  }
}
