/**
 * The keychain's own process. @napi-rs/keyring connects to the OS store synchronously (on
 * Linux, to the D-Bus session bus in the Entry constructor): with a bus that accepts but never
 * answers, the calling thread blocks for good (measured: > 35 s, timers starved; a worker
 * thread blocked there also blocks process.exit). So the calls run here, and the parent kills
 * this process when one outlives its timeout. Messages carry slot names and, for `set`, the
 * token over the IPC channel (a pipe to the parent, never argv or a file).
 */
import { Entry, type EntryOptions } from '@napi-rs/keyring';

export interface KeychainRequest {
  id: number;
  op: 'get' | 'set' | 'delete';
  service: string;
  account: string;
  password?: string;
}

export type KeychainReply = { id: number; ok: true; value: string | boolean | null } | { id: number; ok: false; error: string };

// Secret Service only: the kernel keyring (keyutils) is per boot, per session and blocked in
// containers; a token put there would vanish with the next reboot.
const OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

function handle(m: KeychainRequest): KeychainReply {
  try {
    const e = new Entry(m.service, m.account, OPTIONS);
    switch (m.op) {
      case 'get':
        return { id: m.id, ok: true, value: e.getPassword() };
      case 'set':
        e.setPassword(m.password ?? '');
        return { id: m.id, ok: true, value: true };
      case 'delete':
        return { id: m.id, ok: true, value: e.deleteCredential() };
    }
  } catch (err) {
    return { id: m.id, ok: false, error: (err as Error).message.split('\n')[0] ?? 'keychain error' };
  }
}

process.on('message', (m: KeychainRequest) => {
  process.send?.(handle(m));
});
// The parent going away closes the channel: nothing left to serve.
process.on('disconnect', () => process.exit(0));
