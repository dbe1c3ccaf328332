/**
 * Pure: "did you mean" for a mistyped command (contract, CLI manners). A word is shown back
 * to the user only when it plainly is a mistyped command word: anything else could be a
 * pasted token, and is never echoed.
 */

/** Optimal string alignment distance: edits, with a swap of two neighbours counting as one. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/**
 * The command the user most likely meant, or null. A unique prefix ("rot", "revoke",
 * "install") wins; else the closest name within 1 edit (words up to 4 letters) or 2 edits,
 * and only when no other name is as close.
 */
export function suggestCommand(word: string, names: readonly string[]): string | null {
  const w = word.toLowerCase();
  if (w.length >= 2) {
    const prefixed = names.filter((n) => n.startsWith(w));
    if (prefixed.length === 1) return prefixed[0] ?? null;
  }
  const limit = w.length <= 4 ? 1 : 2;
  let best: string | null = null;
  let bestD = Number.POSITIVE_INFINITY;
  let tie = false;
  for (const n of names) {
    const dist = editDistance(w, n);
    if (dist < bestD) {
      best = n;
      bestD = dist;
      tie = false;
    } else if (dist === bestD) tie = true;
  }
  return best !== null && bestD <= limit && !tie ? best : null;
}

/** The word as typed, when it is safe to show: a short word of letters and dashes. */
export function showableWord(word: string): string | null {
  return /^-{0,2}[A-Za-z][A-Za-z-]{0,23}$/.test(word) ? word : null;
}

/** The lines for an unknown command (or `help <unknown>`). */
export function unknownCommandLines(word: string, names: readonly string[]): string[] {
  const shown = showableWord(word);
  const guess = shown ? suggestCommand(shown.replace(/^-+/, ''), names) : null;
  const what = shown
    ? `Unknown command "${shown}".`
    : `Unknown command (not shown: it could be a token).${word.length >= 16 && !/\s/.test(word) ? ' If it was one, it is now in your shell history: treat it as leaked and rotate it.' : ''}`;
  return [
    guess ? `${what} Did you mean "${guess}"?` : what,
    `Usage: mcp-token-rotator <command> [options]  (commands: ${names.join(', ')})`,
    guess ? `Run "mcp-token-rotator ${guess} --help" for its usage, or "mcp-token-rotator --help" for every command.` : 'Run "mcp-token-rotator --help" to see the commands.',
  ];
}
