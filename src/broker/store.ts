import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { RotatorError } from '../errors.js';
import { Secret } from '../secret.js';

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
