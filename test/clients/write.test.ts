import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConcurrentChangeError, prepareAtomicWrite, writeFileAtomic } from '../../src/clients/write.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'mtr-write-'));
  file = path.join(dir, 'mcp.json');
  writeFileSync(file, '{ "old": true }\n');
  chmodSync(file, 0o640);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const temps = () => readdirSync(dir).filter((n) => n.endsWith('.tmp'));
const me = () => ({ mode: statSync(file).mode, uid: statSync(file).uid, gid: statSync(file).gid });

describe('prepareAtomicWrite', () => {
  it('creates the empty temp file beside the config with its mode; commit writes, renames and leaves nothing behind', async () => {
    const before = readFileSync(file);
    const w = await prepareAtomicWrite(file, me());
    expect(temps()).toEqual([path.basename(w.tmp)]);
    expect(statSync(w.tmp).size).toBe(0);
    expect(statSync(w.tmp).mode & 0o777).toBe(0o640);
    expect(readFileSync(file)).toEqual(before); // nothing changes until commit
    await w.commit(Buffer.from('{ "new": true }\n'), { expected: before });
    expect(readFileSync(file, 'utf8')).toBe('{ "new": true }\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(temps()).toEqual([]);
    expect(w.done).toBe(true);
    await expect(w.commit(Buffer.from('again'))).rejects.toThrow(/used twice/);
  });

  it('refuses to rename over a file that changed since it was read, and removes its temp file', async () => {
    const before = readFileSync(file);
    const w = await prepareAtomicWrite(file, me());
    writeFileSync(file, '{ "someone": "else" }\n');
    await expect(w.commit(Buffer.from('{ "new": true }\n'), { expected: before })).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect(readFileSync(file, 'utf8')).toBe('{ "someone": "else" }\n');
    expect(temps()).toEqual([]);
  });

  it('a file replaced by rename (as editors save) counts as changed too', async () => {
    const before = readFileSync(file);
    const w = await prepareAtomicWrite(file, me());
    writeFileSync(path.join(dir, 'other'), before.toString() + ' ');
    const { renameSync } = await import('node:fs');
    renameSync(path.join(dir, 'other'), file);
    await expect(w.commit(Buffer.from('x'), { expected: before })).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect(temps()).toEqual([]);
  });

  it('discard removes an unused temp file; the config is untouched', async () => {
    const w = await prepareAtomicWrite(file, me());
    await w.discard();
    await w.discard(); // idempotent
    expect(temps()).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('{ "old": true }\n');
  });

  // Root writes into a read-only directory anyway.
  it.skipIf(process.getuid?.() === 0)('fails cleanly, naming the file, where no temp file can be created', async () => {
    chmodSync(dir, 0o500);
    try {
      await expect(prepareAtomicWrite(file, me())).rejects.toMatchObject({ code: 'E_CONFIG_UNWRITABLE', file });
    } finally {
      chmodSync(dir, 0o700);
    }
  });
});

describe('writeFileAtomic (prepare + commit in one)', () => {
  it('replaces the bytes, keeps the mode, leaves no temp file', async () => {
    await writeFileAtomic(file, Buffer.from('new\n'), { ...me(), expected: readFileSync(file) });
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(temps()).toEqual([]);
  });
});
