import fs, { readFileSync, unlinkSync } from 'node:fs';
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
  /** Set by openTokenStore: why the keychain is not used, and how to get it. */
  fallback?: StoreFallback;

  constructor(readonly stateDir: string) {
    this.where = path.join(stateDir, STORE_FILE);
  }

  // Reads are synchronous (one small file): the exec wrapper reads it at every rotation when no
  // daemon runs, and fs/promises with libuv's thread pool would stay resident in it all day
  // (~0.5 MiB, docs/benchmarks.md). Writes, with their fsyncs, stay asynchronous; node's
  // fs.promises is loaded by the first one.
  private async load(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = readFileSync(this.where, 'utf8');
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
    const { mkdir, open, rename, unlink } = fs.promises;
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
/** Why the file backend was chosen at the first enable (no secret: the classified reason), for later enables to repeat. */
export const BACKEND_WHY_META = 'broker.store.why';

/** Why the OS keychain is not used, and how to get it. */
export interface StoreFallback {
  reason: string;
  fix: string;
}

const REENABLE = 'then run "mcp-token-rotator broker disable" and "broker enable" (the store is chosen when broker mode is first enabled)';

/**
 * Pure: why the file store is in use (settings, an earlier choice, or the keychain probe's
 * failure, classified), and how to get the keychain instead. Until then the tokens are
 * protected by the 0600 file's permissions only.
 */
export function explainFileStore(o: { platform: string; setting: 'auto' | 'keychain' | 'file'; pinned: string | null; pinnedWhy?: string | null; probeReason: string; settingsFile: string }): StoreFallback {
  if (o.setting === 'file') {
    return { reason: `the settings choose it ("broker": {"store": "file"} in ${o.settingsFile})`, fix: `To keep the tokens in the OS keychain, set "broker": {"store": "auto"} there, ${REENABLE}.` };
  }
  if (o.pinned === 'file' && !o.probeReason) {
    return { reason: o.pinnedWhy ? `it was chosen when broker mode was first enabled: ${o.pinnedWhy}` : 'it was chosen when broker mode was first enabled', fix: `To move the tokens to the OS keychain once it answers, ${REENABLE}.` };
  }
  const r = o.probeReason;
  if (o.platform === 'darwin') return { reason: `the macOS Keychain did not take a test entry (${r})`, fix: `Unlock the login keychain (Keychain Access), ${REENABLE}.` };
  if (o.platform === 'win32') return { reason: `the Windows Credential Manager did not take a test entry (${r})`, fix: `Check that Credential Manager works for your account, ${REENABLE}.` };
  if (/DBUS_SESSION_BUS_ADDRESS|autolaunch|session bus|Failed to connect to socket|No such file or directory/i.test(r)) {
    return {
      reason: 'there is no D-Bus session bus here (DBUS_SESSION_BUS_ADDRESS is unset and no /run/user/<uid>/bus exists), so no Secret Service can be reached: an SSH login, a container or a headless machine',
      fix: `Log in to a desktop session (it starts the session bus and the keyring), or start them yourself (e.g. "dbus-run-session -- sh -c 'gnome-keyring-daemon --unlock; ...'"), ${REENABLE}.`,
    };
  }
  if (/org\.freedesktop\.secrets|ServiceUnknown|not provided by any|NoSuchObject|no secret service/i.test(r)) {
    return { reason: 'no Secret Service answers on the session bus (gnome-keyring, KWallet or KeePassXC provide one)', fix: `Install and start one (e.g. "sudo apt install gnome-keyring", then log in again), ${REENABLE}.` };
  }
  if (/locked|IsLocked|prompt|dismissed/i.test(r)) {
    return { reason: 'the keyring is locked', fix: `Unlock it (log in to the desktop, or open "Passwords and Keys" / your keyring manager), ${REENABLE}.` };
  }
  if (/did not answer within/i.test(r)) {
    return { reason: 'the Secret Service did not answer in time (often a locked keyring waiting on an unlock prompt)', fix: `Unlock the keyring, ${REENABLE}.` };
  }
  return { reason: `the Secret Service did not take a test entry (${r})`, fix: `Check your keyring (gnome-keyring, KWallet, KeePassXC) is running and unlocked, ${REENABLE}.` };
}

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
  const { open, readFile, rename, unlink } = fs.promises;
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
  if (chosen === 'keychain') {
    if (pinned === null) ctx.store.setMeta(BACKEND_META, chosen);
    await writePinCopy(ctx.paths.dir, chosen);
    return keychain && keychainOk ? keychain : new KeychainTokenStore();
  }
  const fallback = explainFileStore({ platform: ctx.pathEnv.platform, setting, pinned, pinnedWhy: ctx.store.getMeta(BACKEND_WHY_META), probeReason, settingsFile: ctx.settingsFile });
  if (pinned === null) {
    ctx.store.setMeta(BACKEND_META, chosen);
    if (setting !== 'file') ctx.store.setMeta(BACKEND_WHY_META, fallback.reason);
    if (setting === 'auto' && probeReason) ctx.log.warn({ reason: probeReason, why: fallback.reason, fix: fallback.fix }, 'no keychain answered; broker tokens go to the 0600 file in the state directory');
  }
  // Also when the pin is old: a state dir from before the copy existed gets one here.
  await writePinCopy(ctx.paths.dir, chosen);
  const file = new FileTokenStore(ctx.paths.dir);
  file.fallback = fallback;
  return file;
}

/** Broker mode fully off (no slot left): the next enable chooses the store again. */
export function unpinBackend(ctx: Context): void {
  // The copy first: a crash in between leaves the DB's pin, which readers then use.
  try {
    unlinkSync(path.join(ctx.paths.dir, BACKEND_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  ctx.store.db.prepare('DELETE FROM meta WHERE key IN (?, ?)').run(BACKEND_META, BACKEND_WHY_META);
}

/** For processes with no Context (the exec wrapper, headers): the pinned backend, no probe. */
export async function openTokenStoreFor(stateDir: string, backend: StoreBackend): Promise<TokenStore> {
  if (backend === 'file') return new FileTokenStore(stateDir);
  const { KeychainTokenStore } = await import('./keychain.js');
  return new KeychainTokenStore();
}

/** The pinned backend: its copy beside the DB, else read-only from the DB (null before any enable). */
export async function readPinnedBackend(stateDir: string): Promise<StoreBackend | null> {
  let copy = '';
  try {
    copy = readFileSync(path.join(stateDir, BACKEND_FILE), 'utf8').trim();
  } catch {
    // no copy: the DB says
  }
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
