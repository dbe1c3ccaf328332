// Preloaded (`node --import`) into a spawned CLI by the breakage-window benchmark: records
// when each FileHandle fsync returns, as performance.timeOrigin + performance.now() (a clock
// shared with the benchmark process), and writes them to $BENCH_FSYNC_OUT at exit. The only
// FileHandle fsyncs a rotation makes are the configs' temp files and their directories.
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_FSYNC_OUT;
if (out) {
  const times = [];
  const fh = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(fh);
  await fh.close();
  const orig = proto.sync;
  proto.sync = async function sync(...args) {
    const r = await orig.apply(this, args);
    times.push(performance.timeOrigin + performance.now());
    return r;
  };
  process.on('exit', () => writeFileSync(out, JSON.stringify(times)));
}
