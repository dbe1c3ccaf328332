/**
 * How human output looks on this terminal: its width and whether it gets colour. Pure
 * decisions from the environment and the stream's facts, so tests drive them with tables;
 * `terminalStyle()` reads the real ones.
 *
 * Colour follows no-color.org and the FORCE_COLOR convention (chalk, Node): NO_COLOR (any
 * non-empty value) turns it off, FORCE_COLOR (but "0"/"false") turns it on off a TTY,
 * otherwise only a TTY gets it; --json output never does (the caller passes json).
 */

export interface StyleFacts {
  env: Record<string, string | undefined>;
  isTTY: boolean;
  /** The stream's own width (`columns` of a TTY), when it has one. */
  columns?: number | undefined;
  json?: boolean;
}

export interface Style {
  colour: boolean;
  width: number;
}

export const DEFAULT_WIDTH = 80;

export function colourEnabled(f: StyleFacts): boolean {
  if (f.json) return false;
  if (f.env.NO_COLOR) return false;
  const force = f.env.FORCE_COLOR;
  if (force !== undefined) return !['0', 'false'].includes(force.trim().toLowerCase());
  return f.isTTY;
}

/** COLUMNS when it is set to a number, else the TTY's width, else 80. */
export function terminalWidth(f: StyleFacts): number {
  const fromEnv = Number.parseInt(f.env.COLUMNS ?? '', 10);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  if (f.isTTY && f.columns && f.columns > 0) return f.columns;
  return DEFAULT_WIDTH;
}

export function styleFor(f: StyleFacts): Style {
  return { colour: colourEnabled(f), width: terminalWidth(f) };
}

/** The style of stdout (or stderr) of this process. */
export function terminalStyle(stream: NodeJS.WriteStream = process.stdout, json = false): Style {
  return styleFor({ env: process.env, isTTY: stream.isTTY === true, columns: stream.columns, json });
}

const CODES = { green: 32, yellow: 33, red: 31, bold: 1, dim: 2 } as const;
export type Paint = keyof typeof CODES;

export function paint(style: Pick<Style, 'colour'>, colour: Paint, text: string): string {
  return style.colour ? `\x1b[${CODES[colour]}m${text}\x1b[0m` : text;
}

/** A token state's colour: ok green, due yellow, invalid and rotating red. */
export function stateColour(state: string): Paint | null {
  if (state === 'ok') return 'green';
  if (state === 'due') return 'yellow';
  if (state === 'invalid' || state === 'rotating') return 'red';
  return null;
}

/** Visible length of a string that may carry this module's colour codes. */
export function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex -- the SGR sequences paint() adds
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}
