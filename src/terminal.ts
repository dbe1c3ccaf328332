/**
 * Text bound for a terminal. Paths and names come from the file system and from configs,
 * which anyone who can create a file may name: "\x1b]0;...\x07" retitles the window,
 * "\x1b[2J" clears it, "\r" overwrites a line, a bidi override reverses what follows.
 * Each such character is shown as an escape instead (JSON output escapes them already).
 */
/* eslint-disable no-control-regex -- matching control characters is the point */

// C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), bidi overrides and isolates.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const CONTROLS_AND_BREAKS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** A whole message for the terminal: its own line breaks and tabs stay, every other control is escaped. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, escapeChar);
}

/** One value (a path, a server name) inside a line: line breaks and tabs are escaped too. */
export function termSafe(value: string): string {
  return value.replace(CONTROLS_AND_BREAKS, escapeChar);
}
