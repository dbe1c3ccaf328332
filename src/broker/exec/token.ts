import path from 'node:path';
import { RotatorError } from '../../errors.js';
import { Secret } from '../../secret.js';
import { callDaemon } from '../../ipc/client.js';
import { statePaths } from '../../paths.js';
import { openTokenStoreFor, readPinnedBackend, type TokenStore } from '../store.js';

/**
 * Where an exec wrapper gets its slot's token: the daemon when one runs (it has the full
 * session environment), else the store itself, with the backend pinned at `broker enable`.
 */
export function tokenSource(stateDir: string, slot: string, log: (msg: string) => void): { get(): Promise<Secret>; close(): void } {
  let store: TokenStore | undefined;
  const socket = statePaths(stateDir).socket;
  return {
    async get() {
      try {
        const res = await callDaemon(socket, { method: 'broker-token', params: { slot } }, { timeoutMs: 3000 });
        if (res?.ok) {
          const t = (res.result as { token?: unknown }).token;
          if (typeof t === 'string' && t !== '') return new Secret(t);
        } else if (res) log(`the daemon did not give the token (${res.error.message}); reading the store`);
      } catch (e) {
        log(`the daemon did not answer (${(e as Error).message}); reading the store`);
      }
      if (!store) {
        const backend = await readPinnedBackend(stateDir);
        if (!backend) {
          throw new RotatorError('E_BROKER_STORE', `No broker token store is set up in ${stateDir}.`, {
            hint: `Run "mcp-token-rotator broker enable" (the state directory ${path.basename(stateDir)} must be the one the converted entry names).`,
          });
        }
        store = await openTokenStoreFor(stateDir, backend);
      }
      const token = await store.read(slot);
      if (!token) throw new RotatorError('E_BROKER_STORE', `The token store (${store.where}) holds no token for slot ${slot}.`, { hint: 'Run "mcp-token-rotator broker status", then "broker enable" again.' });
      return token;
    },
    close() {
      store?.close?.();
    },
  };
}
