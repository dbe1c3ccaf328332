/**
 * Pure: the human `status` table, fitted to the terminal. One row per token; WHERE groups
 * the locations by client with counts ("claude-code (40), cursor, vscode (3)") and wraps at
 * a group boundary within the column, so 62 configs never make a line of thousands of
 * characters. `verbose` lists every file under its token, one per line, instead.
 * Every value from a file or config goes through termSafe; colour codes are added after.
 */
import { tildify } from '../paths.js';
import { termSafe } from '../terminal.js';
import type { StatusToken } from '../status.js';
import { paint, stateColour, visibleLength, type Style } from './style.js';

/** WHERE never gets narrower than this, even on a tiny terminal (it then wraps more). */
const MIN_WHERE = 16;

/** "claude-code (40), cursor, vscode (3)": clients in first-seen order, a count when more than one file. */
export function groupLocations(locations: StatusToken['locations']): string[] {
  const counts = new Map<string, number>();
  for (const l of locations) counts.set(l.client, (counts.get(l.client) ?? 0) + 1);
  return [...counts].map(([client, n]) => (n > 1 ? `${termSafe(client)} (${n})` : termSafe(client)));
}

/** Groups joined with ", " into lines of at most `width` visible characters (a longer group gets a line of its own). */
export function wrapGroups(groups: string[], width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const [i, g] of groups.entries()) {
    const piece = i < groups.length - 1 ? `${g},` : g;
    if (cur && cur.length + 1 + piece.length > width) {
      lines.push(cur);
      cur = piece;
    } else cur = cur ? `${cur} ${piece}` : piece;
  }
  if (cur) lines.push(cur);
  return lines.length ? lines : ['-'];
}

export function renderStatusTable(tokens: StatusToken[], home: string, style: Style, verbose = false): string {
  // The provider and expiry columns appear once a token needs them: a Certorix-only table stays as it was.
  const showProvider = tokens.some((t) => t.provider !== 'certorix');
  const showExpiry = tokens.some((t) => t.expiresAt != null);
  const headers = ['FINGERPRINT', ...(showProvider ? ['PROVIDER'] : []), 'ROLE', 'AGE', ...(showExpiry ? ['EXPIRES'] : []), 'STATE'];
  const stateAt = headers.length - 1;
  const cells = tokens.map((t) => [
    termSafe(t.fingerprint),
    ...(showProvider ? [termSafe(t.provider)] : []),
    termSafe(t.role ?? '?'),
    t.ageDays === null ? '?' : `${t.ageDays}d`,
    ...(showExpiry ? [t.expiresAt == null ? '-' : termSafe(t.expiresAt.slice(0, 10))] : []),
    t.state,
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const lead = widths.reduce((a, w) => a + w + 2, 0);
  const whereWidth = Math.max(MIN_WHERE, style.width - lead);
  const pad = (text: string, w: number) => text + ' '.repeat(Math.max(0, w - visibleLength(text)));
  const row = (r: string[], where: string) => [...r.map((c, i) => pad(c, widths[i] ?? 0)), where].join('  ').trimEnd();
  const lines = [row(headers, 'WHERE'), row(widths.map((w) => '-'.repeat(w)), '-'.repeat(Math.min(whereWidth, 5)))];
  for (const [i, t] of tokens.entries()) {
    const r = [...(cells[i] ?? [])];
    const colour = stateColour(t.state);
    if (colour) r[stateAt] = paint(style, colour, t.state);
    if (verbose) {
      lines.push(row(r, t.locations.length ? `${t.locations.length} file(s):` : '-'));
      for (const l of t.locations) lines.push(`    ${termSafe(tildify(l.path, home))}  (${termSafe(l.client)})`);
      continue;
    }
    const wrapped = wrapGroups(groupLocations(t.locations), whereWidth);
    lines.push(row(r, wrapped[0] ?? '-'));
    for (const w of wrapped.slice(1)) lines.push(' '.repeat(lead) + w);
  }
  return lines.join('\n');
}
