// Diagnosis only: preloaded with `node --import` into a spawned daemon. On SIGUSR2 it
// writes the process's memory breakdown (and, with --expose-gc, the same after a full GC)
// to $BENCH_PROBE_OUT. It changes nothing else.
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const out = process.env.BENCH_PROBE_OUT;
const snap = () => {
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_size / 1024)]));
  return { rssKb: Math.round(m.rss / 1024), heapTotalKb: Math.round(m.heapTotal / 1024), heapUsedKb: Math.round(m.heapUsed / 1024), externalKb: Math.round(m.external / 1024), arrayBuffersKb: Math.round(m.arrayBuffers / 1024), mallocedKb: Math.round(h.malloced_memory / 1024), peakMallocedKb: Math.round(h.peak_malloced_memory / 1024), spacesKb: spaces };
};
if (out) {
  process.on('SIGUSR2', () => {
    const before = snap();
    let afterGc = null;
    if (typeof globalThis.gc === 'function') {
      globalThis.gc();
      afterGc = snap();
    }
    writeFileSync(out, JSON.stringify({ before, afterGc }));
  });
}
