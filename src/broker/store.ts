import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { RotatorError } from '../errors.js';
import { Secret } from '../secret.js';
import type { Context } from '../context.js';

/**
 * Broker mode's token store: where the current token of each slot lives while no config
 * holds it. The OS keychain where one answers; otherwise a 0600 file in the state dir.
 * Every backend is keyed by slot name (see registry.ts), never by token value.
 */
export type StoreBackend = 'keychain' | 'file';

export interface TokenStore {
  readonly backend: StoreBackend;
  /** Where it is, for `broker status` and `doctor` (a path, or the keychain's service name). */
  readonly where: string;
  read(slot: string): Promise<Secret | null>;
  write(slot: string, token: Secret): Promise<void>;
  remove(slot: string): Promise<void>;
  /** Starts a helper process ahead of need, if the backend has one. */
  warm?(): void;
  /** Ends a helper process, if the backend has one. */
  close?(): void;
}

export const STORE_FILE = 'broker-tokens.json';

/**
 * The file backend: one JSON object `{ slot: token }`, 0600 in the 0700 state dir, replaced
 * atomically (temp, fsync, rename, dir fsync) so a crash leaves the old or the new file.
 */
export class FileTokenStore implements TokenStore {
  readonly backend = 'file' as const;
  readonly where: string;

  constructor(readonly stateDir: string) {
    this.where = path.join(stateDir, STORE_FILE);
  }

  private async load(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(this.where, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, string>;
    } catch {
      // fall through
    }
    throw new RotatorError('E_BROKER_STORE', `The broker token file ${this.where} is damaged.`, {
      hint: 'Run "mcp-token-rotator broker disable" and "broker enable" again, or restore it from a backup; the tokens are also in your Certorix account (regenerate with "mcp-token-rotator set-token").',
    });
  }

  async read(slot: string): Promise<Secret | null> {
    const all = await this.load();
    const v = all[slot];
    return typeof v === 'string' && v !== '' ? new Secret(v) : null;
  }

  async write(slot: string, token: Secret): Promise<void> {
    const all = await this.load();
    all[slot] = token.reveal();
    await this.save(all);
  }

  async remove(slot: string): Promise<void> {
    const all = await this.load();
    if (!(slot in all)) return;
    delete all[slot];
    await this.save(all);
  }

  private async save(all: Record<string, string>): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.where}.${process.pid}.${Date.now()}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(all) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.where);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    const dir = await open(this.stateDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** DB meta key holding the backend chosen at the first enable; every later process uses it. */
export const BACKEND_META = 'broker.store.backend';

/**
 * A copy of the pin beside the DB, so that `headers` and an `exec` wrapper started with no
 * daemon learn the backend without loading SQLite (its native module is a third of a cold
 * `headers`; see docs/benchmarks.md). The DB meta stays the record: every process that
 * opens the store through a Context rewrites the copy from it, and a process that finds no
 * valid copy reads the DB as before.
 */
export const BACKEND_FILE = 'broker-store-backend';

function isBackend(v: unknown): v is StoreBackend {
  return v === 'keychain' || v === 'file';
}

/** Best effort: a copy that cannot be written only costs the next wrapper a SQLite read. */
async function writePinCopy(stateDir: string, backend: StoreBackend): Promise<void> {
  const file = path.join(stateDir, BACKEND_FILE);
  try {
    if ((await readFile(file, 'utf8').catch(() => '')).trim() === backend) return;
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${backend}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file).catch(async (e: unknown) => {
      await unlink(tmp).catch(() => undefined);
      throw e;
    });
  } catch {
    // the DB holds the pin; readers fall back to it
  }
}

/** Pure: which backend to use, given the pin, the setting and whether a keychain answered. */
export function chooseBackend(pinned: string | null, setting: 'auto' | 'keychain' | 'file', keychainOk: () => boolean): StoreBackend | { error: string } {
  if (pinned === 'keychain' || pinned === 'file') return pinned;
  if (setting === 'file') return 'file';
  if (keychainOk()) return 'keychain';
  return setting === 'keychain' ? { error: 'no keychain answered' } : 'file';
}

/**
 * The token store for this state dir. The first call chooses (settings `broker.store`; `auto`
 * probes the keychain with a write, read-back and delete, and falls back to the file) and
 * pins the choice in the DB, so a wrapper started later with a minimal environment, where
 * the keychain may not be reachable, fails loudly instead of silently reading another store.
 */
export async function openTokenStore(ctx: Context): Promise<TokenStore> {
  const { KeychainTokenStore } = await import('./keychain.js');
  const pinned = ctx.store.getMeta(BACKEND_META);
  const setting = ctx.settings.broker?.store ?? 'auto';
  let probeReason = '';
  let keychain: InstanceType<typeof KeychainTokenStore> | undefined;
  let keychainOk = false;
  if (pinned !== 'keychain' && pinned !== 'file' && setting !== 'file') {
    keychain = new KeychainTokenStore({ timeoutMs: 3000 });
    const r = await keychain.probe();
    keychainOk = r.ok;
    if (!r.ok) {
      probeReason = r.reason;
      keychain.close();
    }
  }
  const chosen = chooseBackend(pinned, setting, () => keychainOk);
  if (typeof chosen === 'object') {
    throw new RotatorError('E_BROKER_STORE', `Settings ask for the keychain ("broker": {"store": "keychain"}) but none answered: ${probeReason}`, {
      hint: 'Start or unlock your keychain (on Linux a Secret Service such as gnome-keyring; the kernel keyring is never used), or set "broker": {"store": "auto"} or "file" in the settings.',
    });
  }
  if (pinned === null) {
    ctx.store.setMeta(BACKEND_META, chosen);
    if (setting === 'auto' && chosen === 'file' && probeReason) ctx.log.warn({ reason: probeReason }, 'no keychain answered; broker tokens go to the 0600 file in the state directory');
  }
  // Also when the pin is old: a state dir from before the copy existed gets one here.
  await writePinCopy(ctx.paths.dir, chosen);
  if (chosen === 'keychain') return keychain && keychainOk ? keychain : new KeychainTokenStore();
  return new FileTokenStore(ctx.paths.dir);
}

/** For processes with no Context (the exec wrapper, headers): the pinned backend, no probe. */
export async function openTokenStoreFor(stateDir: string, backend: StoreBackend): Promise<TokenStore> {
  if (backend === 'file') return new FileTokenStore(stateDir);
  const { KeychainTokenStore } = await import('./keychain.js');
  return new KeychainTokenStore();
}

/** The pinned backend: its copy beside the DB, else read-only from the DB (null before any enable). */
export async function readPinnedBackend(stateDir: string): Promise<StoreBackend | null> {
  const copy = (await readFile(path.join(stateDir, BACKEND_FILE), 'utf8').catch(() => '')).trim();
  if (isBackend(copy)) return copy;
  const { default: Database } = await import('better-sqlite3');
  let db;
  try {
    db = new Database(path.join(stateDir, 'rotator.db'), { readonly: true, fileMustExist: true });
  } catch {
    return null;
  }
  try {
    const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(BACKEND_META) as { value: string } | undefined;
    return isBackend(row?.value) ? row.value : null;
  } finally {
    db.close();
  }
}
