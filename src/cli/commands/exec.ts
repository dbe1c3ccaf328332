import { SLOT_PATTERN } from '../../broker/registry.js';
import { UsageError } from '../../errors.js';
import { currentPathEnv, stateDir as defaultStateDir } from '../../paths.js';
import { isoTime } from '../../iso-time.js';
import { scrubSecrets } from '../../secret.js';
import type { Values } from '../commands.js';

/**
 * `exec <slot> -- cmd args...`: the client's child in broker mode. stdout belongs to the MCP
 * session, so every message of ours goes to stderr (the client shows it in its server log).
 */
export async function run(values: Values, positionals: string[] = []): Promise<number> {
  const [slot, command, ...args] = positionals;
  if (!slot || !SLOT_PATTERN.test(slot)) throw new UsageError(`exec needs a slot name as "broker status" shows (e.g. certorix-1a2b3c4d), not "${slot ?? ''}".`);
  if (!command) throw new UsageError('exec needs the server command after "--".');
  const stateDir = typeof values['state-dir'] === 'string' ? values['state-dir'] : defaultStateDir(currentPathEnv());
  const log = (level: string, msg: string) => process.stderr.write(scrubSecrets(`${isoTime()} mcp-token-rotator exec ${slot}: ${level}: ${msg}`) + '\n');

  const [{ tokenSource }, { startRelay }, { watchSignal, readSignal, joinsAnnounced }, { registerWrapper }, { DEFAULT_OPTIONS }, { startMemoryTrim, trimOptionsFromEnv }] = await Promise.all([
    import('../../broker/exec/token.js'),
    import('../../broker/exec/relay.js'),
    import('../../broker/signal.js'),
    import('../../broker/presence.js'),
    import('../../broker/exec/session.js'),
    import('../../process/memory-trim.js'),
  ]);
  // Resident all day: the memory a burst leaves is given back once the relay is quiet.
  const trim = startMemoryTrim(trimOptionsFromEnv());
  const source = tokenSource(stateDir, slot, (m) => log('info', m));
  const seen = await readSignal(stateDir);
  let generation = seen?.generation ?? 0;
  // Registered before the first token: a rotation announced from now on waits for this wrapper.
  const presence = await registerWrapper(stateDir, slot, generation);
  // The first token before anything else: a wrapper that cannot get one says why and exits.
  const first = await source.get();
  let given = false;
  // The entry's own variable (`--env`, written by broker enable for a non-Certorix entry).
  const envVar = typeof values.env === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(values.env) ? values.env : 'CERTORIX_API_TOKEN';
  const env = { ...process.env };
  delete env.CERTORIX_API_TOKEN;
  delete env[envVar];
  const relay = startRelay({
    command,
    args,
    env,
    envVar,
    token: async () => {
      if (!given) {
        given = true;
        return first;
      }
      return source.get();
    },
    log,
    onDrained: () => presence.drained(generation),
    onActivity: trim.touch,
  });
  // Started between a rotation's announce and its stored: hold like the wrappers that were announced to.
  if (seen && joinsAnnounced(seen, slot, Date.now(), seen.revoke ? DEFAULT_OPTIONS.revokeHoldMs : DEFAULT_OPTIONS.holdMs)) relay.signal('announce', seen.revoke);
  // The client ends a server with SIGTERM after closing stdin: pass it on, so no server is orphaned.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => relay.terminate(sig));
  const watcher = await watchSignal(
    stateDir,
    slot,
    (doc) => {
      generation = doc.generation;
      relay.signal(doc.phase, doc.revoke);
    },
    { seen },
  );
  const code = await relay.done;
  trim.stop();
  watcher.close();
  source.close();
  presence.remove();
  // Whatever is still queued for stdout goes out before the process ends.
  await new Promise<void>((r) => (process.stdout.writableLength ? process.stdout.once('drain', () => r()) : r()));
  process.exit(code);
}
