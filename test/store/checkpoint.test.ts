import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/store.js';
import { Journal } from '../../src/store/journal.js';
import { holdReadTransaction } from '../helpers/sqlite-reader.js';

const OLD = 'ctxOLDtokenValueForCheckpointTest0001';
const NEW = 'ctxNEWtokenValueForCheckpointTest0002';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A rotation journaled with both tokens, then erased, as a finished rotation leaves it. */
function journalAndErase(store: Store): void {
  const j = new Journal(store);
  const now = new Date().toISOString();
  const id = j.begin({ oldFingerprint: 'aaaaaaaaaaaa', provider: 'certorix', source: 'manual', idempotencyKey: 'k', oldToken: OLD, files: [], now });
  j.recordNewToken(id, { token: NEW, fingerprint: 'bbbbbbbbbbbb', tokenId: 'x', createdAt: null, now });
  store.transaction(() => j.finish(id, 'finished', now));
}

function leaks(file: string): string[] {
  return ['', '-wal', '-shm']
    .map((s) => file + s)
    .filter((f) => existsSync(f))
    .filter((f) => {
      const b = readFileSync(f);
      return b.includes(OLD) || b.includes(NEW);
    })
    .map((f) => path.basename(f));
}

function freshStore(): Store {
  const dir = mkdtempSync(path.join(tmpdir(), 'mtr-ckpt-'));
  dirs.push(dir);
  return new Store(path.join(dir, 'rotator.db'));
}

describe('checkpoint with another connection open', () => {
  it('retries while a reader pins an old snapshot, then leaves no token in the main file or the WAL', async () => {
    const store = freshStore();
    const reader = await holdReadTransaction(store.file, 700);
    journalAndErase(store);
    // While the reader holds its snapshot, the erased token is still in a WAL frame.
    expect(leaks(store.file)).toContain('rotator.db-wal');
    const out = store.checkpoint({ attempts: 20, waitMs: 150 });
    expect(out).toMatchObject({ done: true, busy: 0 });
    expect(out.attempts).toBeGreaterThan(1);
    // Empty, or gone (the reader's close may have been the last one to see it).
    expect(existsSync(store.file + '-wal') ? statSync(store.file + '-wal').size : 0).toBe(0);
    expect(leaks(store.file)).toEqual([]);
    await reader.released;
    store.close();
  });

  it('says so when the reader outlasts the bound (busy, frames left), and the next open finishes it', async () => {
    const store = freshStore();
    const reader = await holdReadTransaction(store.file, 1_500);
    journalAndErase(store);
    const out = store.checkpoint({ attempts: 2, waitMs: 100 });
    expect(out.done).toBe(false);
    expect(out.busy).toBe(1);
    expect(out.log).toBeGreaterThan(out.checkpointed);
    await reader.released;
    store.close();
    // Closing the last connection folds the WAL in; a reopen checkpoints again in any case.
    const again = new Store(store.file);
    expect(leaks(store.file)).toEqual([]);
    again.close();
  });

  it('an idle second connection does not stop it', () => {
    const store = freshStore();
    const other = new Store(store.file);
    journalAndErase(store);
    expect(store.checkpoint()).toEqual({ done: true, busy: 0, log: 0, checkpointed: 0, attempts: 1 });
    expect(leaks(store.file)).toEqual([]);
    other.close();
    store.close();
  });
});
