/**
 * Is the disk holding the configs encrypted? The seed's advice ("Ensure your machine is
 * secure (encrypted disk ...)") as a check: plaintext tokens on an unencrypted disk are
 * readable by whoever gets the disk (a lost laptop, a discarded drive).
 * - macOS: FileVault, from `fdesetup status` (the boot volume, which holds HOME);
 * - Linux: dm-crypt/LUKS under HOME's file system (lsblk's device tree, or /sys/block/dm-N
 *   with a dm uuid starting CRYPT-, following LVM slaves), eCryptfs, and fscrypt on HOME
 *   (lsattr's E flag);
 * - Windows: BitLocker, from `manage-bde -status C:` (needs an administrator prompt).
 * Pure parsers, tested with real command outputs; the I/O is thin. A result it cannot
 * establish is `unknown`, said as such, never guessed.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { childEnv } from '../process/child-env.js';
import type { Finding } from './finding.js';

export type EncryptionState = 'encrypted' | 'not-encrypted' | 'unknown';

export interface EncryptionFacts {
  state: EncryptionState;
  /** How it was established (or why it could not be). */
  detail: string;
}

// =======================================================================================
// macOS

export function parseFdesetup(stdout: string): EncryptionFacts {
  const s = stdout.trim();
  if (/Decryption in progress/i.test(s)) return { state: 'not-encrypted', detail: 'FileVault is being turned off (decryption in progress)' };
  if (/Encryption in progress/i.test(s)) return { state: 'encrypted', detail: `FileVault is being turned on (${/Percent completed = ([\d.]+)/.exec(s)?.[1] ?? '?'}% done)` };
  if (/^FileVault is On\./m.test(s)) return { state: 'encrypted', detail: 'FileVault is on' };
  if (/^FileVault is Off\./m.test(s)) {
    return { state: 'not-encrypted', detail: /Deferred enablement/i.test(s) ? 'FileVault is off (enabling is deferred to the next log-out)' : 'FileVault is off' };
  }
  return { state: 'unknown', detail: `fdesetup said: ${firstLine(s)}` };
}

// =======================================================================================
// Windows

/** `manage-bde -status C:`: the section of that volume. */
export function parseManageBde(stdout: string, drive: string): EncryptionFacts {
  if (/denied|administrative rights|Administrator/i.test(stdout) && !/Conversion Status/i.test(stdout)) {
    return { state: 'unknown', detail: 'manage-bde needs an administrator prompt to tell (run "manage-bde -status" as administrator, or look at Settings > Privacy & security > Device encryption)' };
  }
  const letter = drive.replace(/[:\\/]+$/, '').toUpperCase();
  const sections = stdout.split(/^Volume /m).slice(1);
  const sec = sections.find((x) => x.toUpperCase().startsWith(`${letter}:`)) ?? (sections.length === 1 ? sections[0] : undefined);
  if (!sec) return { state: 'unknown', detail: `manage-bde did not report volume ${letter}:` };
  const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(.+?)\\s*$`, 'mi').exec(sec)?.[1] ?? '';
  const conversion = field('Conversion Status');
  const protection = field('Protection Status');
  if (/Fully Decrypted/i.test(conversion)) return { state: 'not-encrypted', detail: `BitLocker is off on ${letter}: (Fully Decrypted)` };
  if (/Decryption in Progress/i.test(conversion)) return { state: 'not-encrypted', detail: `BitLocker is being turned off on ${letter}:` };
  if (/Fully Encrypted|Encryption in Progress|Used Space Only Encrypted/i.test(conversion)) {
    if (/Protection Off/i.test(protection)) return { state: 'not-encrypted', detail: `BitLocker protection is suspended on ${letter}: (${conversion}, Protection Off: the key is stored in the clear)` };
    return { state: 'encrypted', detail: `BitLocker on ${letter}: (${conversion})` };
  }
  return { state: 'unknown', detail: `manage-bde reported "${conversion || 'no conversion status'}" for ${letter}:` };
}

// =======================================================================================
// Linux

export interface MountEntry {
  target: string;
  source: string;
  fstype: string;
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** /proc/self/mountinfo lines: `id parent maj:min root target opts [optional...] - fstype source superopts`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const dash = f.indexOf('-');
    if (f.length < 10 || dash < 6) continue;
    out.push({ target: unescapeMount(f[4] ?? ''), fstype: f[dash + 1] ?? '', source: unescapeMount(f[dash + 2] ?? '') });
  }
  return out;
}

/** The mount holding `p`: the longest mount point above it; of equal ones the last (it is on top). */
export function mountFor(entries: MountEntry[], p: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const e of entries) {
    const above = e.target === '/' || p === e.target || p.startsWith(e.target + '/');
    if (above && (!best || e.target.length >= best.target.length)) best = e;
  }
  return best;
}

export interface BlockDevice {
  name: string;
  type: string;
  mountpoints: string[];
  /** Types from the top of the tree down to this device, e.g. ["disk", "part", "crypt", "lvm"]. */
  chain: string[];
}

/** `lsblk -J -o NAME,TYPE,MOUNTPOINTS` (or the older MOUNTPOINT): the tree, flattened with each device's ancestry. */
export function parseLsblk(json: string): BlockDevice[] | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  const top = (v as { blockdevices?: unknown }).blockdevices;
  if (!Array.isArray(top)) return null;
  const out: BlockDevice[] = [];
  const walk = (nodes: unknown[], chain: string[], depth: number) => {
    if (depth > 16) return;
    for (const n of nodes) {
      if (typeof n !== 'object' || n === null) continue;
      const d = n as { name?: unknown; type?: unknown; mountpoints?: unknown; mountpoint?: unknown; children?: unknown };
      const type = typeof d.type === 'string' ? d.type : '?';
      const mps = (Array.isArray(d.mountpoints) ? d.mountpoints : [d.mountpoint]).filter((m): m is string => typeof m === 'string');
      const here = [...chain, type];
      out.push({ name: typeof d.name === 'string' ? d.name : '?', type, mountpoints: mps, chain: here });
      if (Array.isArray(d.children)) walk(d.children, here, depth + 1);
    }
  };
  walk(top, [], 0);
  return out;
}

/** A device-mapper device as /sys/block/dm-N tells it. */
export interface DmDevice {
  dev: string;
  name: string;
  uuid: string;
  slaves: string[];
}

/** `lsattr -d DIR`: whether the E (encrypted, fscrypt) flag is set; null when lsattr could not tell. */
export function parseLsattr(stdout: string): boolean | null {
  const flags = stdout.trim().split(/\s+/)[0];
  if (!flags || !/^[-a-zA-Z]+$/.test(flags)) return null;
  return flags.includes('E');
}

const VIRTUAL_FS = /^(tmpfs|ramfs|overlay|aufs|squashfs|nfs4?|cifs|smb3|9p|virtiofs|fuse(\..*)?|zfs|btrfs-virtual|autofs)$/;

export interface LinuxDiskFacts {
  /** HOME (real path). */
  path: string;
  mount: MountEntry | null;
  lsblk: BlockDevice[] | null;
  dm: DmDevice[] | null;
  fscrypt: boolean | null;
}

export function linuxEncryption(f: LinuxDiskFacts): EncryptionFacts {
  if (f.fscrypt === true) return { state: 'encrypted', detail: `fscrypt encrypts ${f.path}` };
  if (!f.mount) return { state: 'unknown', detail: `could not tell which file system holds ${f.path}` };
  const m = f.mount;
  const on = `${m.source} (${m.fstype}) mounted at ${m.target}`;
  if (m.fstype === 'ecryptfs') return { state: 'encrypted', detail: `eCryptfs: ${on}` };
  // Before lsblk: in a container, lsblk shows the host's devices, mounted at the same paths.
  if (VIRTUAL_FS.test(m.fstype)) return { state: 'unknown', detail: `${f.path} is on ${on}, not a local block device this check can look at` };
  // dm-crypt, through /sys/block (follows LVM on LUKS through its slaves).
  const dmOf = (source: string): DmDevice | undefined => {
    const base = path.basename(source);
    return f.dm?.find((d) => (source.startsWith('/dev/mapper/') ? d.name === base : d.dev === base));
  };
  const isCrypt = (d: DmDevice, depth = 0): boolean =>
    d.uuid.startsWith('CRYPT-') || (depth < 8 && d.slaves.some((s) => f.dm?.some((x) => x.dev === s && isCrypt(x, depth + 1))));
  const dm = dmOf(m.source);
  if (dm && isCrypt(dm)) return { state: 'encrypted', detail: `dm-crypt/LUKS under ${on}` };
  const dev = f.lsblk?.find((d) => d.mountpoints.includes(m.target));
  if (dev) {
    if (dev.chain.includes('crypt')) return { state: 'encrypted', detail: `dm-crypt/LUKS under ${on}` };
    return { state: 'not-encrypted', detail: `${on}, on the block device ${dev.name} (${dev.chain.join(' > ')}) with no dm-crypt layer, and no fscrypt on ${f.path}` };
  }
  if (dm) return { state: 'not-encrypted', detail: `${on}: device-mapper ${dm.dev} (${dm.uuid.split('-')[0] || 'no uuid'}) with no dm-crypt layer` };
  if (/^\/dev\/(sd|nvme|vd|hd|xvd|mmcblk)/.test(m.source) && f.lsblk === null && f.dm !== null) {
    return { state: 'not-encrypted', detail: `${on}: a plain partition (no device-mapper layer)` };
  }
  return { state: 'unknown', detail: `could not find the device of ${on}` };
}

// =======================================================================================
// The finding

const FIX: Record<string, string> = {
  darwin: 'Turn on FileVault: System Settings > Privacy & Security > FileVault (or: sudo fdesetup enable).',
  win32: 'Turn on BitLocker (Settings > Privacy & security > Device encryption, or: manage-bde -on C:).',
  linux: 'Put your home directory on an encrypted disk: LUKS full-disk encryption (chosen at install time) or fscrypt for the home directory.',
};

export function checkDiskEncryption(where: string, f: EncryptionFacts, platform: NodeJS.Platform): Finding {
  const base = { id: 'disk-encryption', file: where };
  switch (f.state) {
    case 'encrypted':
      return { ...base, severity: 'ok', message: `The disk holding ${where} is encrypted: ${f.detail}.`, fix: '' };
    case 'not-encrypted':
      return {
        ...base,
        severity: 'warn',
        message: `The disk holding ${where} is not encrypted (${f.detail}): whoever gets the disk (a lost laptop, a discarded drive) can read every token in the configs.`,
        fix: FIX[platform] ?? 'Use full-disk encryption for the disk holding your home directory.',
      };
    default:
      return {
        ...base,
        severity: 'warn',
        message: `Whether the disk holding ${where} is encrypted is unknown: ${f.detail}.`,
        fix: `Check it yourself. ${FIX[platform] ?? ''}`.trim(),
      };
  }
}

// =======================================================================================
// I/O

function run(cmd: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, env: childEnv(process.env, { LC_ALL: 'C' }), windowsHide: true, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr), missing: code === 'ENOENT' });
    });
  });
}

async function readDm(): Promise<DmDevice[] | null> {
  let names: string[];
  try {
    names = (await readdir('/sys/block')).filter((n) => n.startsWith('dm-'));
  } catch {
    return null;
  }
  const read = (p: string) => readFile(p, 'utf8').then((s) => s.trim(), () => '');
  return Promise.all(
    names.map(async (dev) => ({
      dev,
      name: await read(`/sys/block/${dev}/dm/name`),
      uuid: await read(`/sys/block/${dev}/dm/uuid`),
      slaves: await readdir(`/sys/block/${dev}/slaves`).catch(() => []),
    })),
  );
}

export async function diskEncryption(home: string, platform: NodeJS.Platform = process.platform): Promise<EncryptionFacts> {
  if (platform === 'darwin') {
    const r = await run('fdesetup', ['status']);
    return r.ok ? parseFdesetup(r.stdout) : { state: 'unknown', detail: r.missing ? 'fdesetup is not available' : `fdesetup failed: ${firstLine(r.stderr)}` };
  }
  if (platform === 'win32') {
    const drive = path.parse(home).root.replace(/\\$/, '') || 'C:';
    const r = await run('manage-bde', ['-status', drive]);
    if (r.missing) return { state: 'unknown', detail: 'manage-bde is not available (Windows Home has Device encryption instead: Settings > Privacy & security)' };
    return parseManageBde(r.stdout + '\n' + r.stderr, drive);
  }
  if (platform !== 'linux') return { state: 'unknown', detail: `no check for ${platform}` };
  const real = await realpath(home).catch(() => home);
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  let ls = await run('lsblk', ['-J', '-o', 'NAME,TYPE,MOUNTPOINTS']);
  if (!ls.ok && !ls.missing) ls = await run('lsblk', ['-J', '-o', 'NAME,TYPE,MOUNTPOINT']); // util-linux < 2.37
  const attr = await run('lsattr', ['-d', real]);
  return linuxEncryption({
    path: real,
    mount: mountFor(parseMountinfo(mountinfo), real),
    lsblk: ls.ok ? parseLsblk(ls.stdout) : null,
    dm: await readDm(),
    fscrypt: attr.ok ? parseLsattr(attr.stdout) : null,
  });
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 200) || 'no output';
}
