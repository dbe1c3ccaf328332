import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RotatorError } from '../errors.js';
import { Secret } from '../secret.js';
import type { KeychainReply, KeychainRequest } from './keychain-child.js';
import type { TokenStore } from './store.js';

export const KEYCHAIN_SERVICE = 'mcp-token-rotator';

/**
 * The session bus a desktop login has, for processes started with a minimal environment
 * (an MCP client passes HOME, PATH, USER... but no DBUS_SESSION_BUS_ADDRESS). Only a socket
 * that exists is offered; otherwise the variable stays unset and the keychain says so.
 */
export function sessionBusAddress(env: Record<string, string | undefined>, uid: number | undefined, exists: (p: string) => boolean = existsSync): string | undefined {
  if (env.DBUS_SESSION_BUS_ADDRESS) return env.DBUS_SESSION_BUS_ADDRESS;
  const candidates = [env.XDG_RUNTIME_DIR ? `${env.XDG_RUNTIME_DIR}/bus` : undefined, uid !== undefined ? `/run/user/${uid}/bus` : undefined];
  for (const p of candidates) if (p && exists(p)) return `unix:path=${p}`;
  return undefined;
}

function childScript(): string {
  // Under vitest this module runs from src/*.ts; the child always runs from the build.
  const url = new URL('./keychain-child.js', import.meta.url);
  const p = fileURLToPath(url);
  if (existsSync(p)) return p;
  // In the CLI bundle (dist/src/cli/main.cjs, scripts/bundle.mjs) import.meta.url is the
  // bundle's: the child is tsc's dist/src/broker/keychain-child.js beside it.
  const fromBundle = fileURLToPath(new URL('../broker/keychain-child.js', import.meta.url));
  if (existsSync(fromBundle)) return fromBundle;
  return p.replace(/([\\/])src([\\/]broker[\\/])/, '$1dist$1src$2');
}

function storeError(message: string, cause?: unknown): RotatorError {
  return new RotatorError('E_BROKER_STORE', message, {
    hint: 'Unlock the keychain (on Linux: a Secret Service such as gnome-keyring must run in your session), or set "broker": {"store": "file"} in the settings and run "mcp-token-rotator broker disable" then "broker enable".',
    cause,
  });
}

/**
 * The OS keychain (macOS Keychain, Secret Service, Windows Credential Manager) through a
 * child process, with a timeout on every call. The child starts on first use and stays for
 * the next calls; it never keeps this process alive on its own.
 */
export class KeychainTokenStore implements TokenStore {
  readonly backend = 'keychain' as const;
  readonly where: string;
  #child: ChildProcess | undefined;
  #next = 1;
  #pending = new Map<number, { resolve: (r: KeychainReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly opts: { timeoutMs?: number; service?: string } = {}) {
    this.where = `OS keychain, service "${this.service}"`;
  }

  get service(): string {
    return this.opts.service ?? KEYCHAIN_SERVICE;
  }

  /** Starts the child ahead of need (a rotation does this before the regenerate call). */
  warm(): void {
    this.child();
  }

  private child(): ChildProcess {
    if (this.#child && this.#child.connected) return this.#child;
    const env = { ...process.env };
    const bus = sessionBusAddress(env, process.getuid?.());
    if (bus) env.DBUS_SESSION_BUS_ADDRESS = bus;
    const c = fork(childScript(), [], { env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
    c.on('message', (r: KeychainReply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      clearTimeout(p.timer);
      p.resolve(r);
      this.idle();
    });
    const gone = () => {
      if (this.#child === c) this.#child = undefined;
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id);
        clearTimeout(p.timer);
        p.reject(storeError('The keychain helper process ended before answering.'));
      }
    };
    c.on('exit', gone);
    c.on('error', gone);
    this.#child = c;
    this.idle();
    return c;
  }

  /** With nothing pending, neither the child nor its channel holds this process open. */
  private idle(): void {
    const c = this.#child;
    if (!c) return;
    if (this.#pending.size === 0) {
      c.unref();
      c.channel?.unref();
    } else {
      c.ref();
      c.channel?.ref();
    }
  }

  private call(op: KeychainRequest['op'], account: string, password?: string): Promise<string | boolean | null> {
    const c = this.child();
    const id = this.#next++;
    const timeoutMs = this.opts.timeoutMs ?? 5000;
    return new Promise<KeychainReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        // A call stuck in the OS store blocks the child for good: replace it.
        c.kill('SIGKILL');
        if (this.#child === c) this.#child = undefined;
        reject(storeError(`The keychain did not answer within ${timeoutMs} ms (${op} of slot ${account}).`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.idle();
      const req: KeychainRequest = { id, op, service: this.service, account, ...(password !== undefined ? { password } : {}) };
      c.send(req, (err) => {
        if (!err) return;
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        clearTimeout(p.timer);
        reject(storeError(`Cannot reach the keychain helper: ${err.message}`, err));
      });
    }).then((r) => {
      if (!r.ok) throw storeError(`The keychain refused to ${op} slot ${account}: ${r.error}`);
      return r.value;
    });
  }

  async read(slot: string): Promise<Secret | null> {
    const v = await this.call('get', slot);
    return typeof v === 'string' && v !== '' ? new Secret(v) : null;
  }

  async write(slot: string, token: Secret): Promise<void> {
    await this.call('set', slot, token.reveal());
    // Read back: a store that accepts but does not keep (a locked collection that
    // silently drops writes) must fail here, while the journal still holds the token.
    const back = await this.read(slot);
    if (!back || !back.equals(token)) throw storeError(`The keychain did not keep the token of slot ${slot} (read-back differs).`);
  }

  async remove(slot: string): Promise<void> {
    await this.call('delete', slot);
  }

  /** Write, read back and delete a throw-away entry: does a keychain answer here? */
  async probe(): Promise<{ ok: true } | { ok: false; reason: string }> {
    const account = `probe-${process.pid}-${Date.now()}`;
    try {
      const value = new Secret(`probe-${Math.random().toString(36).slice(2)}-value`);
      await this.write(account, value);
      await this.remove(account);
      return { ok: true };
    } catch (e) {
      return { ok: false, reason: (e as Error).message };
    }
  }

  close(): void {
    this.#child?.kill();
    this.#child = undefined;
  }
}
