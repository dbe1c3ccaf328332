import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brokerBus, type BrokerEvent } from '../../src/broker/events.js';
import { joinsAnnounced, parseSignal, readSignal, RotationSignal, watchSignal, type SignalDoc } from '../../src/broker/signal.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const until = async (pred: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!pred() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 5));
  return pred();
};

describe('rotation signal', () => {
  it('reaches a watcher of the directory in each phase, and the in-process bus; no secret in the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mtr-signal-'));
    dirs.push(dir);
    const seen: SignalDoc[] = [];
    const other: SignalDoc[] = [];
    const bus: BrokerEvent[] = [];
    const onBus = (e: BrokerEvent) => bus.push(e);
    brokerBus.on('event', onBus);
    const w = await watchSignal(dir, 'certorix-aaaa0001', (d) => seen.push(d), { pollMs: 60_000 });
    const w2 = await watchSignal(dir, 'certorix-bbbb0002', (d) => other.push(d), { pollMs: 60_000 });
    try {
      const s = new RotationSignal(dir, ['certorix-aaaa0001'], 'aaaaaaaaaaaa', false);
      const t0 = performance.now();
      await s.announce();
      expect(await until(() => seen.length === 1)).toBe(true);
      const ms = performance.now() - t0;
      await s.stored('bbbbbbbbbbbb');
      expect(await until(() => seen.length === 2)).toBe(true);
      expect(seen.map((d) => [d.generation, d.phase])).toEqual([
        [1, 'announce'],
        [1, 'stored'],
      ]);
      // Not this wrapper's slot: nothing.
      expect(other).toEqual([]);
      expect(bus.map((e) => e.type)).toEqual(['announce', 'stored']);
      // An abort after stored is a no-op; the next rotation takes the next generation.
      await s.aborted();
      const s2 = new RotationSignal(dir, ['certorix-aaaa0001'], 'bbbbbbbbbbbb', true);
      await s2.announce();
      await s2.aborted();
      expect(await until(() => seen.length === 4)).toBe(true);
      expect(seen.slice(2).map((d) => [d.generation, d.phase, d.revoke])).toEqual([
        [2, 'announce', true],
        [2, 'aborted', true],
      ]);
      expect(Object.keys((await readSignal(dir)) ?? {}).sort()).toEqual(['at', 'generation', 'phase', 'revoke', 'slots']);
      expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      expect(ms).toBeLessThan(2000);
    } finally {
      w.close();
      w2.close();
      brokerBus.off('event', onBus);
    }
  });

  it('the poll backs up a missed watch event', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mtr-signal-'));
    dirs.push(dir);
    const seen: SignalDoc[] = [];
    // `seen` as of generation 0: the stored phase already in the file counts as new.
    const s = new RotationSignal(dir, ['certorix-aaaa0001'], 'aaaaaaaaaaaa', false);
    await s.stored('bbbbbbbbbbbb');
    const w = await watchSignal(dir, 'certorix-aaaa0001', (d) => seen.push(d), { pollMs: 50, seen: null });
    try {
      expect(await until(() => seen.length === 1)).toBe(true);
    } finally {
      w.close();
    }
  });

  it.each([['{}'], ['not json'], ['{"generation":1,"phase":"exploded","slots":[]}']])('ignores a malformed file: %s', (text) => {
    expect(parseSignal(text)).toBeNull();
  });
});

describe('a wrapper starting during a rotation', () => {
  const at = '2026-12-03T08:00:00.000Z';
  const t = Date.parse(at);
  const doc = (o: Partial<SignalDoc>): SignalDoc => ({ generation: 4, phase: 'announce', slots: ['certorix-0a1b2c3d'], revoke: false, at, ...o });
  it.each<[string, SignalDoc | null, number, boolean]>([
    ['a fresh announce for its slot: holds from the start', doc({}), t + 500, true],
    ['no signal yet', null, t, false],
    ['the rotation already stored', doc({ phase: 'stored' }), t + 500, false],
    ['aborted', doc({ phase: 'aborted' }), t + 500, false],
    ['another slot', doc({ slots: ['certorix-ffffffff'] }), t + 500, false],
    ['an announce older than the hold (its rotating process died)', doc({}), t + 20_000, false],
    ['an unreadable time', doc({ at: '' }), t, false],
  ])('%s', (_n, seen, now, want) => {
    expect(joinsAnnounced(seen, 'certorix-0a1b2c3d', now, 20_000)).toBe(want);
  });
});
