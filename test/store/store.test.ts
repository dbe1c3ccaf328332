import { describe, expect, it } from 'vitest';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/store.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { prettySink } from '../../src/log.js';

const fresh = () => new Store(path.join(mkdtempSync(path.join(tmpdir(), 'mtr-store-')), 'state', 'rotator.db'));

describe('store', () => {
  it('creates a 0700 directory and a 0600 database at the latest migration; reopening is a no-op', () => {
    const s = fresh();
    expect(statSync(path.dirname(s.file)).mode & 0o777).toBe(0o700);
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    expect(s.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(s.db.pragma('secure_delete', { simple: true })).toBe(1);
    s.close();
    const again = new Store(s.file);
    expect(again.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    again.close();
  });

  it('a transaction that reads then writes is not failed by another process writing in between (BEGIN IMMEDIATE)', () => {
    // The daemon rescanning while "broker enable" records entries: a deferred transaction's
    // stale read snapshot cannot be upgraded, and SQLite answers "database is locked" at once.
    const a = fresh();
    const b = new Store(a.file);
    b.db.pragma('busy_timeout = 50');
    let bWrote = true;
    a.transaction(() => {
      a.getMeta('k');
      try {
        b.setMeta('k', 'from-b');
      } catch {
        bWrote = false; // it waits for the write lock (here: gives up after 50 ms)
      }
      a.setMeta('k', 'from-a');
    });
    expect(bWrote).toBe(false);
    expect(b.getMeta('k')).toBe('from-a');
    b.close();
    a.close();
  });

  it('records sightings once, follows successors, and moves locations with the token', () => {
    const s = fresh();
    expect(s.recordSeen('aaaaaaaaaaaa', 'certorix', '2026-01-01T00:00:00.000Z')).toBe(true);
    expect(s.recordSeen('aaaaaaaaaaaa', 'certorix', '2026-01-02T00:00:00.000Z')).toBe(false);
    s.recordConfig({ path: '/h/.cursor/mcp.json', client: 'cursor', format: 'json', status: 'ok', error: null }, [{ keyPath: '["a"]', fingerprint: 'aaaaaaaaaaaa', client: 'cursor', server: 'c', kind: 'env' }], '2026-01-02T00:00:00.000Z');
    s.recordSuccessor('aaaaaaaaaaaa', 'bbbbbbbbbbbb', { tokenId: 't2', createdAt: '2026-01-03T00:00:00.000Z' }, '2026-01-03T00:00:00.000Z');
    s.recordSuccessor('bbbbbbbbbbbb', 'cccccccccccc', { tokenId: 't3', createdAt: null }, '2026-01-04T00:00:00.000Z');
    expect(s.getToken('aaaaaaaaaaaa')?.state).toBe('retired');
    expect(s.currentSuccessor('aaaaaaaaaaaa')).toBe('cccccccccccc');
    expect(s.currentSuccessor('cccccccccccc')).toBeNull();
    expect(s.listLocations().map((l) => l.fingerprint)).toEqual(['cccccccccccc']);
    // A config that stops parsing keeps its last known locations.
    s.recordConfig({ path: '/h/.cursor/mcp.json', client: 'cursor', format: 'json', status: 'error', error: 'broken' }, [], '2026-01-05T00:00:00.000Z');
    expect(s.listLocations()).toHaveLength(1);
    s.close();
  });

  it('lists events newest first, paged, and by fingerprint', () => {
    const s = fresh();
    for (let i = 0; i < 250; i++) {
      s.addEvent({ at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), type: 'rotated', fingerprint: i % 2 ? 'aaaaaaaaaaaa' : 'bbbbbbbbbbbb', newFingerprint: null, source: 'manual', files: [`/f${i}`], detail: null });
    }
    const page = s.listEvents({ limit: 100 });
    expect(page).toHaveLength(100);
    expect(page[0]!.files).toEqual(['/f249']);
    expect(page[99]!.files).toEqual(['/f150']);
    expect(s.listEvents({ fingerprint: 'aaaaaaaaaaaa', limit: 1000 })).toHaveLength(125);
    const plan = s.db.prepare('EXPLAIN QUERY PLAN SELECT * FROM events ORDER BY at DESC, id DESC LIMIT 100').all() as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/events_at/);
    s.close();
  });
});

describe('readable log lines on a terminal', () => {
  it('turns a pino JSON line into time, level, message and fields', () => {
    let out = '';
    prettySink({ write: (s: string) => (out += s) }).write(JSON.stringify({ level: 40, time: '2026-11-29T10:11:12.000Z', pid: 1, name: 'x', msg: 'token due', fingerprint: 'abcdefabcdef', ageDays: 93 }) + '\n');
    expect(out).toBe('10:11:12 WARN  token due  fingerprint=abcdefabcdef ageDays=93\n');
  });
});
