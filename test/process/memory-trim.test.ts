import { describe, expect, it } from 'vitest';
import { counts, nextTrimStep, startMemoryTrim, type HeapTrimmer, type TrimOptions, type TrimState } from '../../src/process/memory-trim.js';

const O: TrimOptions = { quietMs: 5000, minIntervalMs: 30_000, minGrowthBytes: 0 };

describe('nextTrimStep (pure)', () => {
  const cases: [string, TrimState, number, ReturnType<typeof nextTrimStep>][] = [
    ['no activity since the last trim: nothing, however long', { lastActivityMs: 0, lastTrimMs: 1000, dirty: false }, 1e9, { type: 'none' }],
    ['quiet long enough, never trimmed: trim', { lastActivityMs: 1000, lastTrimMs: null, dirty: true }, 6000, { type: 'trim' }],
    ['quiet for 2 s of 5: wait the other 3', { lastActivityMs: 1000, lastTrimMs: null, dirty: true }, 3000, { type: 'wait', ms: 3000 }],
    ['quiet enough, but the last trim was 10 s ago: wait until 30 s have passed', { lastActivityMs: 100_000, lastTrimMs: 96_000, dirty: true }, 106_000, { type: 'wait', ms: 20_000 }],
    ['quiet enough and the last trim 30 s ago: trim', { lastActivityMs: 100_000, lastTrimMs: 96_000, dirty: true }, 126_000, { type: 'trim' }],
    ['activity just now: wait the whole quiet period', { lastActivityMs: 50_000, lastTrimMs: 0, dirty: true }, 50_000, { type: 'wait', ms: 5000 }],
  ];
  it.each(cases)('%s', (_name, state, now, want) => {
    expect(nextTrimStep(state, O, now)).toEqual(want);
  });
});

describe('counts (pure): activity that is a burst', () => {
  const MiB = 1024 * 1024;
  it.each([
    ['no growth threshold (the exec wrapper): any activity', 0, 10 * MiB, 10 * MiB, true],
    ['threshold 2 MiB, the heap as it was after the trim (a check that found nothing due)', 2 * MiB, 10 * MiB, 10 * MiB, false],
    ['threshold 2 MiB, grown 1.9 MiB', 2 * MiB, 11.9 * MiB, 10 * MiB, false],
    ['threshold 2 MiB, grown 2 MiB (a rotation, a rescan)', 2 * MiB, 12 * MiB, 10 * MiB, true],
    ['threshold 2 MiB, smaller than after the trim', 2 * MiB, 8 * MiB, 10 * MiB, false],
  ])('%s', (_name, minGrowthBytes, usedNow, usedAfterTrim, want) => {
    expect(counts({ ...O, minGrowthBytes }, usedNow, usedAfterTrim)).toBe(want);
  });
});

/** A trimmer that records when it ran (the V8 side is exercised by exec-footprint.test.ts). */
function recorder(ok = true): HeapTrimmer & { at: number[] } {
  const at: number[] = [];
  return {
    at,
    trim() {
      at.push(Date.now());
      return Promise.resolve(ok);
    },
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('startMemoryTrim (real timers)', () => {
  it('trims once after start-up, once after a burst once quiet, and not while activity goes on', async () => {
    const r = recorder();
    // Periods of hundreds of ms: a loaded CI machine stretches a 20 ms sleep, not to 300 ms.
    const t = startMemoryTrim({ quietMs: 300, minIntervalMs: 0 }, r);
    try {
      await sleep(450);
      // Start-up is a burst: one trim, then nothing while idle.
      expect(r.at).toHaveLength(1);
      await sleep(400);
      expect(r.at).toHaveLength(1);
      // Activity every 20 ms for 400 ms: no trim during it, one 300 ms after it ends.
      const t0 = Date.now();
      let last = t0;
      while (Date.now() - t0 < 400) {
        t.touch();
        last = Date.now();
        await sleep(20);
      }
      expect(r.at).toHaveLength(1);
      await sleep(600);
      expect(r.at).toHaveLength(2);
      // Timers never fire early; 1 ms of slack for Date.now()'s granularity.
      expect(r.at[1]! - last).toBeGreaterThanOrEqual(299);
      expect(t.trims).toBe(2);
    } finally {
      t.stop();
    }
  });

  it('spaces trims by minIntervalMs however often bursts come', async () => {
    const r = recorder();
    const t = startMemoryTrim({ quietMs: 10, minIntervalMs: 1000 }, r);
    try {
      await sleep(60);
      expect(r.at).toHaveLength(1);
      for (let i = 0; i < 5; i++) {
        t.touch();
        await sleep(40);
      }
      // 200 ms of short bursts, each followed by quiet: still within 1 s of the first trim.
      expect(r.at).toHaveLength(1);
      await sleep(1100);
      expect(r.at).toHaveLength(2);
      expect(r.at[1]! - r.at[0]!).toBeGreaterThanOrEqual(999);
    } finally {
      t.stop();
    }
  });

  it('with minGrowthBytes, activity that left the heap as it was does not trim again; growth does', async () => {
    const r = recorder();
    let heap = 10_000_000;
    const t = startMemoryTrim({ quietMs: 30, minIntervalMs: 0, minGrowthBytes: 2_000_000 }, r, Date.now, () => heap);
    await sleep(150);
    expect(r.at).toHaveLength(1); // start-up counts always
    heap += 500_000;
    t.touch();
    await sleep(150);
    expect(r.at).toHaveLength(1); // grew 0.5 MB: not a burst
    heap += 2_000_000;
    t.touch();
    await sleep(150);
    expect(r.at).toHaveLength(2); // grew 2.5 MB since the trim: trimmed
    t.stop();
  });

  it('a trimmer that cannot collect is not asked again; stop() cancels a pending trim', async () => {
    const r = recorder(false);
    const t = startMemoryTrim({ quietMs: 10, minIntervalMs: 0 }, r);
    await sleep(60);
    t.touch();
    await sleep(60);
    expect(r.at).toHaveLength(1);
    expect(t.trims).toBe(0);
    const r2 = recorder();
    const t2 = startMemoryTrim({ quietMs: 30, minIntervalMs: 0 }, r2);
    t2.stop();
    await sleep(80);
    expect(r2.at).toHaveLength(0);
  });
});
