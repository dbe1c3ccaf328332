import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BACKEND_META, FileTokenStore, chooseBackend, explainFileStore, openTokenStore, readPinnedBackend, STORE_FILE } from '../../src/broker/store.js';
import { Context } from '../../src/context.js';
import { KeychainTokenStore, sessionBusAddress } from '../../src/broker/keychain.js';
import { Secret } from '../../src/secret.js';
import { ROOT } from '../helpers/home.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'mtr-store-'));
  dirs.push(d);
  return d;
}

describe('file token store', () => {
  it('writes 0600 atomically, reads, replaces and removes per slot', async () => {
    const dir = await tmp();
    const s = new FileTokenStore(dir);
    expect(await s.read('certorix-aaaa0001')).toBeNull();
    await s.write('certorix-aaaa0001', new Secret('ctx_first_token_value_0001'));
    await s.write('certorix-aaaa0002', new Secret('ctx_second_token_value_002'));
    await s.write('certorix-aaaa0001', new Secret('ctx_first_token_value_0003'));
    expect((await s.read('certorix-aaaa0001'))?.reveal()).toBe('ctx_first_token_value_0003');
    expect((await s.read('certorix-aaaa0002'))?.reveal()).toBe('ctx_second_token_value_002');
    expect(statSync(path.join(dir, STORE_FILE)).mode & 0o777).toBe(0o600);
    await s.remove('certorix-aaaa0002');
    expect(await s.read('certorix-aaaa0002')).toBeNull();
  });

  it('refuses a damaged file with a hint instead of treating it as empty', async () => {
    const dir = await tmp();
    await writeFile(path.join(dir, STORE_FILE), '{not json');
    await expect(new FileTokenStore(dir).read('certorix-aaaa0001')).rejects.toMatchObject({ code: 'E_BROKER_STORE' });
  });
});

describe('backend choice', () => {
  it.each<[string, string | null, 'auto' | 'keychain' | 'file', boolean, unknown]>([
    ['a pin wins over the setting', 'file', 'keychain', true, 'file'],
    ['a keychain pin is kept even if the probe would fail', 'keychain', 'auto', false, 'keychain'],
    ['auto with a keychain', null, 'auto', true, 'keychain'],
    ['auto without one falls back to the file', null, 'auto', false, 'file'],
    ['file never probes', null, 'file', true, 'file'],
    ['keychain without one fails loudly', null, 'keychain', false, { error: 'no keychain answered' }],
  ])('%s', (_n, pinned, setting, ok, want) => {
    expect(chooseBackend(pinned, setting, () => ok)).toEqual(want);
  });

  it('derives the session bus for a minimal environment only when the socket exists', () => {
    expect(sessionBusAddress({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' }, 1000)).toBe('unix:path=/x');
    expect(sessionBusAddress({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000, (p) => p === '/run/user/1000/bus')).toBe('unix:path=/run/user/1000/bus');
    expect(sessionBusAddress({}, 1000, (p) => p === '/run/user/1000/bus')).toBe('unix:path=/run/user/1000/bus');
    expect(sessionBusAddress({}, 1000, () => false)).toBeUndefined();
  });
});

describe('openTokenStore', () => {
  it('auto with no keychain answering: the file, pinned in the DB for every later process', async () => {
    const home = await tmp();
    const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
    process.env.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent/mtr-bus';
    const ctx = new Context({ pathEnv: { platform: 'linux', home, env: { HOME: home } } });
    try {
      const s = await openTokenStore(ctx);
      expect(s.backend).toBe('file');
      expect(ctx.store.getMeta(BACKEND_META)).toBe('file');
      expect(await readPinnedBackend(ctx.paths.dir)).toBe('file');
    } finally {
      await ctx.close();
      if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
      else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
    }
  });

  it('a pinned keychain is used without probing (a wrapper never silently switches to the file)', async () => {
    const home = await tmp();
    const ctx = new Context({ pathEnv: { platform: 'linux', home, env: { HOME: home } } });
    try {
      ctx.store.setMeta(BACKEND_META, 'keychain');
      const s = await openTokenStore(ctx);
      expect(s.backend).toBe('keychain');
      s.close?.();
    } finally {
      await ctx.close();
    }
  });
});

describe('keychain token store', () => {
  it('fails loudly (never the kernel keyring) when no Secret Service answers', async () => {
    const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
    process.env.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent/mtr-bus';
    const k = new KeychainTokenStore({ timeoutMs: 5000, service: 'mcp-token-rotator-test' });
    try {
      await expect(k.write('certorix-aaaa0001', new Secret('ctx_never_stored_value_01'))).rejects.toMatchObject({ code: 'E_BROKER_STORE' });
      expect((await k.probe()).ok).toBe(false);
    } finally {
      k.close();
      if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
      else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
    }
  });

  it('times out on a bus that accepts but never answers (the call would block for good)', async () => {
    const dir = await tmp();
    const sock = path.join(dir, 'bus');
    const server = net.createServer(() => undefined).listen(sock);
    const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
    process.env.DBUS_SESSION_BUS_ADDRESS = `unix:path=${sock}`;
    const k = new KeychainTokenStore({ timeoutMs: 1500, service: 'mcp-token-rotator-test' });
    const t0 = Date.now();
    try {
      await expect(k.read('certorix-aaaa0001')).rejects.toThrow(/did not answer within 1500 ms/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      k.close();
      server.close();
      if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
      else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
    }
  });

  const hasKeyring = process.platform === 'linux' && ['dbus-run-session', 'gnome-keyring-daemon'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
  if (!hasKeyring) {
    it.skip('Secret Service for real (NOTE: skipped: dbus-run-session and gnome-keyring-daemon are not installed; see .ci/run)', () => undefined);
  } else {
    it('Secret Service for real: under dbus-run-session with an unlocked gnome-keyring', () => {
      const script = path.join(ROOT, 'dist/test/fake/keychain-probe.js');
      expect(existsSync(script), 'run "npm run build" first').toBe(true);
      const out = execFileSync('dbus-run-session', ['--', 'sh', '-c', `echo -n test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec "${process.execPath}" "${script}"`], {
        encoding: 'utf8',
        timeout: 30_000,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirs[0] ?? tmpdir() },
      });
      const r = JSON.parse(out.trim().split('\n').pop() as string) as Record<string, unknown>;
      expect(r).toEqual({ probe: true, readBack: 'ctx_keychain_value_0000001', replaced: 'ctx_keychain_value_0000002', afterRemove: null, secretTool: 'ctx_keychain_value_0000002' });
    });
  }
});

// Issue 15, item 12: when the keychain is not used, enable says why and how to get it.
describe('why the file store', () => {
  const base = { platform: 'linux', setting: 'auto' as const, pinned: null, probeReason: '', settingsFile: '/home/u/.config/mcp-token-rotator/config.json' };
  it.each<[string, Partial<Parameters<typeof explainFileStore>[0]>, RegExp, RegExp]>([
    ['settings choose it', { setting: 'file' }, /settings choose it .*config\.json/, /"store": "auto"/],
    ['no session bus', { probeReason: 'Platform failure: DBus error: Using X11 for dbus-daemon autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS instead' }, /no D-Bus session bus/, /desktop session/],
    ['no Secret Service', { probeReason: 'Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files' }, /no Secret Service answers/, /gnome-keyring/],
    ['locked', { probeReason: 'Platform failure: org.freedesktop.Secret.Error.IsLocked' }, /keyring is locked/, /Unlock it/],
    ['no answer in time', { probeReason: 'The keychain did not answer within 3000 ms (set of slot probe-1).' }, /did not answer in time/, /Unlock/],
    ['pinned earlier, its reason kept', { pinned: 'file', pinnedWhy: 'the keyring is locked' }, /first enabled: the keyring is locked/, /broker disable/],
    ['macOS', { platform: 'darwin', probeReason: 'User interaction is not allowed.' }, /macOS Keychain/, /login keychain/],
  ])('%s', (_n, o, reason, fix) => {
    const r = explainFileStore({ ...base, ...o });
    expect(r.reason).toMatch(reason);
    expect(r.fix).toMatch(fix);
  });
});
