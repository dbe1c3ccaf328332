import { scrubSecrets } from '../secret.js';
import { escapeControls, termSafe } from '../terminal.js';

/** stdout carries only the JSON document (with --json) or the human report. */
export function printJson(doc: unknown): void {
  process.stdout.write(scrubSecrets(JSON.stringify(doc, null, 2)) + '\n');
}

/** Human output: control characters a file name may carry are escaped, so it cannot rewrite the terminal. */
export function out(line = ''): void {
  process.stdout.write(escapeControls(scrubSecrets(line)) + '\n');
}

/**
 * Human output already made terminal-safe piece by piece (termSafe on every value), with the
 * colour codes src/cli/style.ts added: only the secrets are scrubbed, so the colours survive.
 */
export function outStyled(text: string): void {
  process.stdout.write(scrubSecrets(text) + '\n');
}

/** Messages (warnings, progress, errors) go to stderr so --json output stays parseable. */
export function err(line: string): void {
  process.stderr.write(escapeControls(scrubSecrets(line)) + '\n');
}

export function table(headers: string[], rawRows: string[][]): string {
  // A cell is one value: a line break in a file name must not start a fake row.
  const rows = rawRows.map((r) => r.map(termSafe));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(headers), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}
