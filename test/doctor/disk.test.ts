import { describe, expect, it } from 'vitest';
import { checkDiskEncryption, linuxEncryption, mountFor, parseFdesetup, parseLsattr, parseLsblk, parseManageBde, parseMountinfo, type DmDevice, type LinuxDiskFacts } from '../../src/doctor/disk.js';

// Outputs as the tools print them (Ubuntu 22.04/24.04 installs, Fedora with LVM on LUKS,
// macOS 14, Windows 11), trimmed to the lines that matter.

const LSBLK_LUKS_LVM = `{
   "blockdevices": [
      {"name":"nvme0n1", "type":"disk", "mountpoints":[null],
         "children": [
            {"name":"nvme0n1p1", "type":"part", "mountpoints":["/boot/efi"]},
            {"name":"nvme0n1p2", "type":"part", "mountpoints":["/boot"]},
            {"name":"nvme0n1p3", "type":"part", "mountpoints":[null],
               "children": [
                  {"name":"dm_crypt-0", "type":"crypt", "mountpoints":[null],
                     "children": [
                        {"name":"ubuntu--vg-ubuntu--lv", "type":"lvm", "mountpoints":["/"]}
                     ]
                  }
               ]
            }
         ]
      }
   ]
}`;

const LSBLK_PLAIN = `{
   "blockdevices": [
      {"name":"sda", "type":"disk", "mountpoints":[null],
         "children": [
            {"name":"sda1", "type":"part", "mountpoints":["/boot/efi"]},
            {"name":"sda2", "type":"part", "mountpoints":["/"]},
            {"name":"sda3", "type":"part", "mountpoints":["/home"]}
         ]
      },
      {"name":"zram0", "type":"disk", "mountpoints":["[SWAP]"]}
   ]
}`;

// util-linux < 2.37 (Debian 11): MOUNTPOINT, a single value.
const LSBLK_OLD_HOME_CRYPT = `{
   "blockdevices": [
      {"name": "sda", "type": "disk", "mountpoint": null,
         "children": [
            {"name": "sda1", "type": "part", "mountpoint": "/"},
            {"name": "sda2", "type": "part", "mountpoint": null,
               "children": [
                  {"name": "home_crypt", "type": "crypt", "mountpoint": "/home"}
               ]
            }
         ]
      }
   ]
}`;

const MOUNTINFO = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/ubuntu--vg-ubuntu--lv rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 259:2 / /boot rw,relatime shared:30 - ext4 /dev/nvme0n1p2 rw
41 22 0:35 / /tmp rw,nosuid,nodev shared:20 - tmpfs tmpfs rw,size=8041392k
58 22 0:48 / /home/ann/My\\040Drive rw,relatime shared:33 - fuse.rclone remote: rw,user_id=1000`;

const DM: DmDevice[] = [
  { dev: 'dm-0', name: 'dm_crypt-0', uuid: 'CRYPT-LUKS2-5b1e6a3c9f0d4c8e8f1a2b3c4d5e6f70-dm_crypt-0', slaves: ['nvme0n1p3'] },
  { dev: 'dm-1', name: 'ubuntu--vg-ubuntu--lv', uuid: 'LVM-x8Yc2bWZ3mKq7pT1vN4sR6uH9jL0dF5gA2eC8iO3kM7nB1qS4wE6rT9yU0iP2aS', slaves: ['dm-0'] },
];

describe('disk encryption: parsers', () => {
  it('reads mountinfo, escapes included, and finds the mount holding a path', () => {
    const m = parseMountinfo(MOUNTINFO);
    expect(m).toHaveLength(5);
    expect(m[4]).toEqual({ target: '/home/ann/My Drive', source: 'remote:', fstype: 'fuse.rclone' });
    expect(mountFor(m, '/home/ann')?.target).toBe('/');
    expect(mountFor(m, '/tmp/mtr-home-x')?.fstype).toBe('tmpfs');
    expect(mountFor(m, '/home/ann/My Drive/x')?.fstype).toBe('fuse.rclone');
    expect(mountFor(m, '/tmpfoo')?.target).toBe('/');
  });

  it('flattens lsblk trees (new and old column names) with each device ancestry', () => {
    const d = parseLsblk(LSBLK_LUKS_LVM)!;
    expect(d.find((x) => x.mountpoints.includes('/'))?.chain).toEqual(['disk', 'part', 'crypt', 'lvm']);
    expect(parseLsblk(LSBLK_OLD_HOME_CRYPT)!.find((x) => x.name === 'home_crypt')?.mountpoints).toEqual(['/home']);
    expect(parseLsblk('lsblk: unknown column: MOUNTPOINTS')).toBeNull();
  });

  it.each([
    ['-------------e------- /home/ann', false],
    ['------------E-e------- /home/ann', true],
    ['lsattr: Operation not supported While reading flags on /home/ann', null],
    ['', null],
  ])('lsattr %j -> fscrypt %s', (out, enc) => {
    expect(parseLsattr(out)).toBe(enc);
  });

  const linux = (o: Partial<LinuxDiskFacts>): LinuxDiskFacts => ({ path: '/home/ann', mount: null, lsblk: null, dm: null, fscrypt: false, ...o });
  const root = { target: '/', source: '/dev/mapper/ubuntu--vg-ubuntu--lv', fstype: 'ext4' };
  it.each<[string, LinuxDiskFacts, string]>([
    ['LVM on LUKS, by lsblk', linux({ mount: root, lsblk: parseLsblk(LSBLK_LUKS_LVM) }), 'encrypted'],
    ['LVM on LUKS, by /sys/block slaves (no lsblk)', linux({ mount: root, dm: DM }), 'encrypted'],
    ['plain partitions', linux({ mount: { target: '/home', source: '/dev/sda3', fstype: 'ext4' }, lsblk: parseLsblk(LSBLK_PLAIN) }), 'not-encrypted'],
    ['only /home encrypted (old lsblk)', linux({ mount: { target: '/home', source: '/dev/mapper/home_crypt', fstype: 'ext4' }, lsblk: parseLsblk(LSBLK_OLD_HOME_CRYPT) }), 'encrypted'],
    ['root plain, home on it (old lsblk)', linux({ mount: { target: '/', source: '/dev/sda1', fstype: 'ext4' }, lsblk: parseLsblk(LSBLK_OLD_HOME_CRYPT) }), 'not-encrypted'],
    ['fscrypt on HOME over a plain disk', linux({ mount: { target: '/home', source: '/dev/sda3', fstype: 'ext4' }, lsblk: parseLsblk(LSBLK_PLAIN), fscrypt: true }), 'encrypted'],
    ['eCryptfs home', linux({ mount: { target: '/home/ann', source: '/home/.ecryptfs/ann/.Private', fstype: 'ecryptfs' } }), 'encrypted'],
    ['tmpfs (a temp HOME)', linux({ mount: { target: '/tmp', source: 'tmpfs', fstype: 'tmpfs' }, lsblk: parseLsblk(LSBLK_PLAIN) }), 'unknown'],
    ['container overlay', linux({ mount: { target: '/', source: 'overlay', fstype: 'overlay' }, lsblk: parseLsblk(LSBLK_PLAIN) }), 'unknown'],
    ['no mount found', linux({}), 'unknown'],
    ['a device nobody lists', linux({ mount: { target: '/', source: '/dev/root', fstype: 'ext4' }, lsblk: [], dm: [] }), 'unknown'],
  ])('%s: %s', (_n, f, state) => {
    expect(linuxEncryption(f).state).toBe(state);
  });

  it.each([
    ['FileVault is On.\n', 'encrypted'],
    ['FileVault is Off.\n', 'not-encrypted'],
    ["FileVault is Off.\nDeferred enablement appears to be active for user 'ann'.\n", 'not-encrypted'],
    ['FileVault is On.\nEncryption in progress: Percent completed = 42.7\n', 'encrypted'],
    ['FileVault is On.\nDecryption in progress: Percent completed = 12.0\n', 'not-encrypted'],
    ['Error: This command requires root.\n', 'unknown'],
  ])('fdesetup %j -> %s', (out, state) => {
    expect(parseFdesetup(out).state).toBe(state);
  });

  const bde = (conversion: string, protection: string) => `BitLocker Drive Encryption: Configuration Tool version 10.0.22621
Copyright (C) 2013 Microsoft Corporation. All rights reserved.

Volume C: [Windows]
[OS Volume]

    Size:                 475.83 GB
    BitLocker Version:    2.0
    Conversion Status:    ${conversion}
    Percentage Encrypted: 100.0%
    Encryption Method:    XTS-AES 128
    Protection Status:    ${protection}
    Lock Status:          Unlocked
    Identification Field: Unknown
    Key Protectors:
        TPM
        Numerical Password
`;
  it.each([
    [bde('Fully Encrypted', 'Protection On'), 'encrypted'],
    [bde('Used Space Only Encrypted', 'Protection On'), 'encrypted'],
    [bde('Encryption in Progress', 'Protection Off'), 'not-encrypted'],
    [bde('Fully Encrypted', 'Protection Off'), 'not-encrypted'], // suspended
    [bde('Fully Decrypted', 'Protection Off'), 'not-encrypted'],
    [
      'BitLocker Drive Encryption: Configuration Tool version 10.0.22621\nCopyright (C) 2013 Microsoft Corporation. All rights reserved.\n\nERROR: An attempt to access a required resource was denied.\nCheck that you have administrative rights on the computer.\n',
      'unknown',
    ],
  ])('manage-bde case %#', (out, state) => {
    expect(parseManageBde(out, 'C:').state).toBe(state);
  });

  it('the finding says unknown as unknown, and names the fix per OS', () => {
    expect(checkDiskEncryption('/home/ann', { state: 'encrypted', detail: 'FileVault is on' }, 'darwin').severity).toBe('ok');
    const off = checkDiskEncryption('/Users/ann', { state: 'not-encrypted', detail: 'FileVault is off' }, 'darwin');
    expect(off).toMatchObject({ id: 'disk-encryption', severity: 'warn' });
    expect(off.fix).toContain('fdesetup enable');
    const unk = checkDiskEncryption('/home/ann', { state: 'unknown', detail: 'could not find the device' }, 'linux');
    expect(unk.message).toMatch(/is unknown: could not find the device/);
    expect(unk.fix).toMatch(/^Check it yourself/);
  });
});
