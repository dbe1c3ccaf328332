import { scrubSecrets } from '../secret.js';

/** stdout carries only the JSON document (with --json) or the human report. */
export function printJson(doc: unknown): void {
  process.stdout.write(scrubSecrets(JSON.stringify(doc, null, 2)) + '\n');
}

export function out(line = ''): void {
  process.stdout.write(scrubSecrets(line) + '\n');
}

/** Messages (warnings, progress, errors) go to stderr so --json output stays parseable. */
export function err(line: string): void {
  process.stderr.write(scrubSecrets(line) + '\n');
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(headers), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}
