/**
 * Issue 9 §8: when a rewritten config cannot keep its group (the writer is not root and not
 * in that group), it must never end with a wider group: members of the group it got had
 * only the "other" bits before, and get no more now; the user is told.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmod, chown, cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { safeMode } from '../../src/clients/write.js';
import { ROOT } from '../helpers/home.js';

describe('safeMode (pure)', () => {
  it.each([
    [0o640, 10, 10, 0o640],
    [0o640, 10, 20, 0o600],
    [0o660, 10, 20, 0o600],
    [0o664, 10, 20, 0o644],
    [0o644, 10, 20, 0o644],
    [0o600, 10, 20, 0o600],
    [0o2775, 10, 20, 0o2755],
  ])('mode %s, group %i wanted, %i got -> %s', (mode, want, got, expected) => {
    expect(safeMode(mode, want, got)).toBe(expected);
  });
});

// A writer that is not root is needed for a chgrp to fail: run as root, the test drops to uid 4242.
describe.runIf(process.getuid?.() === 0)('a writer that cannot keep the group (spawned as uid 4242)', () => {
  it('narrows 0640 to 0600 under the group it got, keeps the bytes, and says so naming the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mtr-own-'));
    // uid 4242 may not be able to reach this checkout (a 0700 parent, as mktemp makes): it
    // loads a copy of the built modules from a directory it can read.
    const mods = await mkdtemp(path.join(tmpdir(), 'mtr-own-mods-'));
    try {
      await cp(path.join(ROOT, 'dist/src'), mods, { recursive: true });
      await chmod(mods, 0o755);
      await chown(dir, 4242, 4242);
      const file = path.join(dir, 'mcp.json');
      await writeFile(file, '{"old": true}\n');
      await chown(file, 4242, 4343); // a group uid 4242 is not in
      await chmod(file, 0o640);
      const script = `
        import { writeFileAtomic } from ${JSON.stringify(path.join(mods, 'clients/write.js'))};
        import { statSync } from 'node:fs';
        const st = statSync(process.argv[1]);
        const warnings = [];
        await writeFileAtomic(process.argv[1], Buffer.from('{"new": true}\\n'), { mode: st.mode, uid: st.uid, gid: st.gid, onWarning: (m) => warnings.push(m) });
        process.stdout.write(JSON.stringify(warnings));
      `;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, file], { uid: 4242, gid: 4242, encoding: 'utf8', cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      const st = await stat(file);
      expect(await readFile(file, 'utf8')).toBe('{"new": true}\n');
      expect(st.gid).toBe(4242);
      expect(st.mode & 0o777).toBe(0o600);
      const warnings = JSON.parse(r.stdout) as string[];
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(file);
      expect(warnings[0]).toMatch(/mode is 0600 instead of 0640/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(mods, { recursive: true, force: true });
    }
  });
});
