/**
 * What `mcp-token-rotator headers <slot>` does for Claude Code's `headersHelper`: the slot's
 * current token, from the daemon or the store, but never one a rotation is about to kill.
 * Claude Code runs the helper at connect and again right after a 401; during a rotation it
 * therefore waits (bounded) for the new token to be stored. Claude Code gives the helper 10 s,
 * so every wait here is bounded well under that; this module loads nothing heavy (no
 * settings/zod, no SQLite, no pino) so a cold start stays small.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { RotatorError } from '../errors.js';
import type { Secret } from '../secret.js';

export const SIGNAL_FILE = 'broker-signal.json';

export interface BrokerSignal {
  generation: number;
  phase: 'announce' | 'stored' | 'aborted';
  slots: string[];
  revoke: boolean;
  at: string;
}

/** A signal older than this is a crashed rotation's leftover (the next start finishes it), not one to wait for. */
export const STALE_SIGNAL_MS = 120_000;
/** The helper's whole budget for waiting on a rotation; Claude Code kills it at 10 s. */
export const HELPER_WAIT_MS = { rotate: 6_000, revoke: 4_000 } as const;

/** Pure: does this signal tell the helper for `slot` to wait? */
export function mustWait(sig: BrokerSignal | null, slot: string, now: number): boolean {
  if (!sig || sig.phase !== 'announce') return false;
  if (!Array.isArray(sig.slots) || !sig.slots.includes(slot)) return false;
  const at = Date.parse(sig.at);
  return !(Number.isFinite(at) && now - at > STALE_SIGNAL_MS);
}

export async function readSignal(stateDir: string): Promise<BrokerSignal | null> {
  try {
    const v = JSON.parse(await readFile(path.join(stateDir, SIGNAL_FILE), 'utf8')) as BrokerSignal;
    return v && typeof v === 'object' && typeof v.phase === 'string' ? v : null;
  } catch {
    return null; // absent, or caught mid-replace (it is renamed into place, so rarely)
  }
}

/**
 * Waits while a rotation of `slot` is announced and not stored; returns the milliseconds
 * waited and whether it ended because the bound was reached. Watches the directory (the
 * file is replaced by rename, which silences a watch on the file) and polls as a fallback.
 */
export async function waitForRotation(stateDir: string, slot: string, opts: { now?: () => number } = {}): Promise<{ waitedMs: number; timedOut: boolean }> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  let sig = await readSignal(stateDir);
  if (!mustWait(sig, slot, now())) return { waitedMs: 0, timedOut: false };
  const bound = sig?.revoke ? HELPER_WAIT_MS.revoke : HELPER_WAIT_MS.rotate;
  let kick: () => void = () => undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(stateDir, () => kick());
    watcher.on('error', () => undefined);
  } catch {
    // watching unsupported here: the poll covers it
  }
  try {
    while (now() - t0 < bound) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        kick = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      sig = await readSignal(stateDir);
      if (!mustWait(sig, slot, now())) return { waitedMs: now() - t0, timedOut: false };
    }
    return { waitedMs: now() - t0, timedOut: true };
  } finally {
    watcher?.close();
  }
}

/** The token: the daemon's answer when one runs (it holds too), else the store. */
export async function slotToken(stateDir: string, slot: string, opts: { daemonTimeoutMs: number }): Promise<{ token: Secret; source: 'daemon' | 'store' }> {
  const { statePaths } = await import('../paths.js');
  const { callDaemon } = await import('../ipc/client.js');
  const { Secret } = await import('../secret.js');
  let res;
  try {
    res = await callDaemon(statePaths(stateDir).socket, { method: 'broker-token', params: { slot } }, { timeoutMs: opts.daemonTimeoutMs });
  } catch {
    res = null; // a daemon that does not answer in time: read the store ourselves
  }
  if (res && res.ok) {
    const t = (res.result as { token?: unknown } | null)?.token;
    if (typeof t === 'string' && t !== '') return { token: new Secret(t), source: 'daemon' };
  }
  if (res && !res.ok && res.error.code !== 'E_USAGE') {
    throw new RotatorError('E_BROKER', res.error.message, res.error.hint ? { hint: res.error.hint } : {});
  }
  // No daemon (or one too old to know broker-token): the store directly, with the backend
  // pinned at `broker enable` (the file store when nothing was pinned).
  const { FileTokenStore, openTokenStoreFor, readPinnedBackend } = await import('./store.js');
  const backend = await readPinnedBackend(stateDir);
  const store = backend ? await openTokenStoreFor(stateDir, backend) : new FileTokenStore(stateDir);
  const t = await store.read(slot);
  if (!t) {
    throw new RotatorError('E_BROKER', `No token is stored for broker slot ${slot} (state directory ${stateDir}).`, {
      hint: 'Run "mcp-token-rotator broker status" to see the converted entries; "mcp-token-rotator broker disable" puts the token back in the configs.',
    });
  }
  return { token: t, source: 'store' };
}

/** Exactly what Claude Code's headersHelper must print: one JSON object of headers. */
export function headersJson(token: Secret): string {
  return JSON.stringify({ Authorization: `Bearer ${token.reveal()}` });
}
