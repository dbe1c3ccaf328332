/**
 * The exec wrapper and the daemon give back the memory a burst left behind (for the wrapper a
 * run of relayed calls or a rotation; for the daemon its start-up scan and API checks, then
 * each queued job), once they have gone quiet.
 *
 * Why: both stay resident all day, and what they cost is what they hold while idle. A burst
 * leaves its garbage in the V8 heap: the young generation's second half committed, old-space
 * pages half full. V8 gives that back by itself only through its memory reducer, which acts
 * once allocation has been low for a while (measured: 28-35 s after the wrapper's last call;
 * 8-16 s after a daemon's start-up, 63 -> 59 MiB with 62 configs watched) and, once it has
 * run, not again until the heap has grown by megabytes.
 * So after any later burst the garbage would stay. Measured on the bench's idle wrapper after
 * 700 relayed calls and 10 rotations: 44.3 MiB before, 42.0 MiB after a trim (docs/benchmarks.md).
 *
 * How: after `quietMs` without activity (and at most once per `minIntervalMs`), three full
 * collections half a second apart (V8's memory reducer also runs up to three: the first marks,
 * the next ones compact and release the pages), with V8's `--optimize-for-size` on for their
 * duration only, so they compact the heap and shrink the young generation as the reducer does.
 * A collection of this heap (a few MiB) takes a few milliseconds; a call arriving during one
 * waits for it. The collections come from V8's gc extension, which only a new context gets
 * (`--expose-gc` cannot add it to the running one); that context is dropped afterwards.
 *
 * The decision (`nextTrimStep`) is pure; `startMemoryTrim` is the timer and V8 calls around it.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface TrimOptions {
  /** How long the relay must have been quiet. */
  quietMs: number;
  /** The least time between two trims (bounds the CPU a client calling every few seconds costs). */
  minIntervalMs: number;
  /**
   * Activity counts only once the V8 heap has grown this much since the last trim (0: always).
   * The daemon's minute check that finds nothing due leaves the heap as it was: trimming after
   * each would cost ~0.05 s of CPU a minute for nothing.
   */
  minGrowthBytes: number;
}

export const TRIM_DEFAULTS: TrimOptions = { quietMs: 5000, minIntervalMs: 30_000, minGrowthBytes: 0 };

/** Pure: whether activity that left the heap at `usedNow` counts as a burst to trim after. */
export function counts(o: TrimOptions, usedNow: number, usedAfterTrim: number): boolean {
  return o.minGrowthBytes <= 0 || usedNow - usedAfterTrim >= o.minGrowthBytes;
}

const heapUsed = (): number => getHeapStatistics().used_heap_size;

export interface TrimState {
  /** When the relay last did something (a line either way, a signal, a timer). */
  lastActivityMs: number;
  /** When the last trim started; null before the first. */
  lastTrimMs: number | null;
  /** Whether there was activity since the last trim (an idle wrapper trims once, not forever). */
  dirty: boolean;
}

export type TrimStep = { type: 'trim' } | { type: 'wait'; ms: number } | { type: 'none' };

/** Pure: trim now, check again in `ms`, or nothing to do until the next activity. */
export function nextTrimStep(s: TrimState, o: TrimOptions, nowMs: number): TrimStep {
  if (!s.dirty) return { type: 'none' };
  const due = Math.max(s.lastActivityMs + o.quietMs, s.lastTrimMs === null ? -Infinity : s.lastTrimMs + o.minIntervalMs);
  return due <= nowMs ? { type: 'trim' } : { type: 'wait', ms: due - nowMs };
}

/** The V8 side: full collections with `--optimize-for-size` on for their duration. */
export interface HeapTrimmer {
  /** Runs one trim (resolves when done); false when this V8 offers no way to collect. */
  trim(): Promise<boolean>;
}

export function v8HeapTrimmer(rounds = 3, spacingMs = 500): HeapTrimmer {
  return {
    async trim() {
      let gc: unknown;
      try {
        setFlagsFromString('--expose-gc');
        gc = runInNewContext('gc');
      } catch {
        return false;
      }
      if (typeof gc !== 'function') return false;
      setFlagsFromString('--optimize-for-size');
      try {
        for (let i = 0; i < rounds; i++) {
          if (i > 0) await new Promise((r) => setTimeout(r, spacingMs));
          (gc as () => void)();
        }
      } finally {
        setFlagsFromString('--no-optimize-for-size');
      }
      return true;
    },
  };
}

/** Settings from the environment: MCP_TOKEN_ROTATOR_TRIM_QUIET_MS (tests: a short quiet period). */
export function trimOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<TrimOptions> {
  const quietMs = Number(env.MCP_TOKEN_ROTATOR_TRIM_QUIET_MS);
  return env.MCP_TOKEN_ROTATOR_TRIM_QUIET_MS !== undefined && Number.isFinite(quietMs) && quietMs >= 0 ? { quietMs } : {};
}

export interface MemoryTrim {
  /** The process did something: a trim follows once it has been quiet for `quietMs`. */
  touch(): void;
  /** Stops the timer (the process is ending). */
  stop(): void;
  /** How many trims ran (for tests and the bench). */
  readonly trims: number;
}

export function startMemoryTrim(opts: Partial<TrimOptions> = {}, trimmer: HeapTrimmer = v8HeapTrimmer(), now: () => number = Date.now, used: () => number = heapUsed): MemoryTrim {
  const o = { ...TRIM_DEFAULTS, ...opts };
  const state: TrimState = { lastActivityMs: now(), lastTrimMs: null, dirty: true };
  /** The heap right after the last trim (read only when `minGrowthBytes` is set). */
  let usedAfterTrim = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let stopped = false;
  let trims = 0;

  const arm = (ms: number): void => {
    // unref: a pending trim never keeps the wrapper alive.
    timer = setTimeout(check, ms);
    timer.unref();
  };

  function check(): void {
    timer = undefined;
    if (stopped || running) return;
    const step = nextTrimStep(state, o, now());
    if (step.type === 'wait') return arm(step.ms);
    if (step.type === 'none') return;
    state.lastTrimMs = now();
    state.dirty = false;
    running = true;
    void trimmer
      .trim()
      .then((ok) => {
        if (ok) trims++;
        // A trimmer that cannot collect never will: stop checking.
        else stopped = true;
        if (o.minGrowthBytes > 0) usedAfterTrim = used();
      })
      .catch(() => {
        stopped = true;
      })
      .finally(() => {
        running = false;
        // Activity during the trim: check again.
        if (!stopped && state.dirty && !timer) arm(0);
      });
  }

  // Start-up is a burst too (the bundle compiled, the first server started).
  arm(o.quietMs);
  return {
    touch() {
      if (o.minGrowthBytes > 0 && !counts(o, used(), usedAfterTrim)) return;
      state.lastActivityMs = now();
      state.dirty = true;
      // The timer is armed only when none is: a call costs two assignments, not a timer.
      if (!timer && !running && !stopped) arm(o.quietMs);
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    get trims() {
      return trims;
    },
  };
}
