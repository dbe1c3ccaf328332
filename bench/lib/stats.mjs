// Small statistics and formatting helpers. Every measure is repeated; we report the
// median and the spread (min..max, and the interquartile range when there are enough runs).
import { performance } from 'node:perf_hooks';

export const now = () => performance.now();

export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(values) {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), min: s[0], max: s[s.length - 1], p25: quantile(s, 0.25), p75: quantile(s, 0.75), values };
}

export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function fmtSpread(sum, unit = fmtMs) {
  return `${unit(sum.median)} [${unit(sum.min)}..${unit(sum.max)}, n=${sum.n}]`;
}

export function fmtMiB(kb) {
  return `${(kb / 1024).toFixed(1)} MiB`;
}

/** A markdown (GitHub) table; also readable as plain text. */
export function mdTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (r) => `| ${r.map((c, i) => String(c ?? '').padEnd(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
