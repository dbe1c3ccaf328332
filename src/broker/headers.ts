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

/**
 * The token: the daemon's answer when one runs (it holds during a rotation too), else the
 * store with the backend pinned at `broker enable`; the same lookup an exec wrapper makes.
 */
export async function slotToken(stateDir: string, slot: string, opts: { daemonTimeoutMs: number }): Promise<{ token: Secret }> {
  const { tokenSource } = await import('./exec/token.js');
  const source = tokenSource(stateDir, slot, (msg) => process.stderr.write(`mcp-token-rotator headers: ${msg}\n`), { daemonTimeoutMs: opts.daemonTimeoutMs });
  try {
    return { token: await source.get() };
  } finally {
    source.close();
  }
}

/** Exactly what Claude Code's headersHelper must print: one JSON object of headers. */
export function headersJson(token: Secret): string {
  return JSON.stringify({ Authorization: `Bearer ${token.reveal()}` });
}
