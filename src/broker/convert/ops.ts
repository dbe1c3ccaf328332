/**
 * Byte-exact edit operations on a positional tree (positions.ts): each returns splices of
 * the original text that touch only what the operation is about, in the layout already
 * there (one-line or one-per-line, indentation, CRLF, `": "` or `":"`). Pure.
 */
import type { FileFormat } from '../../clients/formats.js';
import type { PArr, PNode, PObj, PProp, PStr } from './positions.js';

export interface Splice {
  start: number;
  end: number;
  text: string;
}

export class ConvertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConvertError';
  }
}

/** Applies non-overlapping splices (any order). */
export function applySplices(text: string, splices: Splice[]): string {
  const sorted = [...splices].sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as Splice;
    const cur = sorted[i] as Splice;
    if (cur.start < prev.end) throw new ConvertError('overlapping edits in one entry');
  }
  let out = text;
  for (const sp of sorted.reverse()) out = out.slice(0, sp.start) + sp.text + out.slice(sp.end);
  return out;
}

/** The file's line break: CRLF when its first line break is one. */
export function eolOf(text: string): string {
  const i = text.indexOf('\n');
  return i > 0 && text[i - 1] === '\r' ? '\r\n' : '\n';
}

// eslint-disable-next-line no-control-regex -- control characters are what must be escaped
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** A string literal for this format. JSON escapes suit YAML's double quotes; TOML's basic strings differ a little. */
export function encodeString(format: FileFormat, v: string): string {
  if (format === 'toml') {
    const named: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };
    return `"${v.replace(/["\\]/g, (c) => named[c] ?? c).replace(CONTROL, (c) => named[c] ?? `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`)}"`;
  }
  return JSON.stringify(v).replace(/[\u2028\u2029]/g, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16)}`);
}

/** A key as this format writes it: quoted in JSON, bare where TOML and YAML allow. */
export function encodeKey(format: FileFormat, k: string): string {
  if (format === 'json' || format === 'jsonc') return JSON.stringify(k);
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? k : encodeString(format, k);
}

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}

/** Just after the line break that ends the line holding `pos` (or the end of the text). */
function lineEndAfter(text: string, pos: number): number {
  const nl = text.indexOf('\n', pos);
  return nl < 0 ? text.length : nl + 1;
}

function indentAt(text: string, pos: number): string {
  const ls = lineStart(text, pos);
  return /^[ \t]*/.exec(text.slice(ls, pos))?.[0] ?? '';
}

function sameLine(text: string, a: number, b: number): boolean {
  return !text.slice(Math.min(a, b), Math.max(a, b)).includes('\n');
}

/** Blanks and one comma, nothing else (so a separator copied from it carries no comment). */
const PLAIN_SEP = /^\s*,\s*$/;

/** The separator between two items/props of this flow collection, in its own layout. */
function flowSep(text: string, open: number, nodes: Array<{ start: number; end: number }>, eol: string): string {
  const [a, b] = nodes;
  if (a && b) {
    const between = text.slice(a.end, b.start);
    if (PLAIN_SEP.test(between)) return between;
  }
  if (a && !sameLine(text, open, a.start)) return `,${eol}${indentAt(text, a.start)}`;
  return ', ';
}

export function setString(format: FileFormat, node: PStr, value: string): Splice {
  return { start: node.start, end: node.end, text: encodeString(format, value) };
}

/** Puts encoded values before the first item of an array, in the array's layout. */
export function prependItems(text: string, format: FileFormat, arr: PArr, values: string[]): Splice {
  const eol = eolOf(text);
  const enc = values.map((v) => encodeString(format, v));
  const first = arr.items[0];
  if (arr.block) {
    if (!first) throw new ConvertError('empty block sequence');
    const ls = lineStart(text, first.start);
    const lead = text.slice(ls, first.start);
    // "- " with its indentation; a nested "- - x" is not a layout we copy.
    if (!/^[ \t]*-[ \t]+$/.test(lead)) throw new ConvertError('unusual sequence layout');
    return { start: ls, end: ls, text: enc.map((v) => `${lead}${v}${eol}`).join('') };
  }
  if (!first) return { start: arr.start + 1, end: arr.start + 1, text: enc.join(', ') };
  const sep = flowSep(text, arr.start, arr.items, eol);
  return { start: first.start, end: first.start, text: enc.map((v) => v + sep).join('') };
}

/** Removes the first `n` items of an array (the inverse of prependItems). */
export function removeFirstItems(text: string, arr: PArr, n: number): Splice {
  if (n <= 0) return { start: arr.start, end: arr.start, text: '' };
  const lastRemoved = arr.items[n - 1];
  const next = arr.items[n];
  if (!lastRemoved) throw new ConvertError('array shorter than expected');
  const first = arr.items[0] as PNode;
  if (arr.block) {
    if (!next) throw new ConvertError('cannot empty a block sequence');
    return { start: lineStart(text, first.start), end: lineStart(text, next.start), text: '' };
  }
  if (next) return { start: first.start, end: next.start, text: '' };
  return { start: arr.start + 1, end: arr.end - 1, text: '' };
}

/**
 * Removes one key of an object. Block objects lose the key's lines; flow objects the key
 * and one comma. A YAML block map left without keys becomes `{}` (through `owner`).
 */
export function removeProp(text: string, format: FileFormat, obj: PObj, p: PProp, owner?: PProp): Splice {
  const idx = obj.props.indexOf(p);
  if (idx < 0) throw new ConvertError('key not in object');
  if (obj.block) {
    if (obj.props.length === 1 && format === 'yaml') {
      if (!owner) throw new ConvertError('cannot empty this YAML map');
      const colon = text.indexOf(':', owner.keyEnd);
      return { start: colon, end: obj.end, text: ': {}' };
    }
    return { start: lineStart(text, p.start), end: lineEndAfter(text, p.end - 1), text: '' };
  }
  const next = obj.props[idx + 1];
  const prev = obj.props[idx - 1];
  if (next) return { start: p.start, end: next.start, text: '' };
  if (prev) return { start: prev.end, end: p.end, text: '' };
  return { start: obj.start + 1, end: obj.end - 1, text: '' };
}

/** The text between a key and its value in this object (`": "`, `" = "`, `": "`). */
function kvSep(text: string, format: FileFormat, obj: PObj): string {
  for (const p of obj.props) {
    if (p.value.start > p.keyEnd) {
      const sep = text.slice(p.keyEnd, p.value.start);
      if (/^[ \t]*[:=][ \t]*$/.test(sep)) return sep;
    }
  }
  return format === 'toml' ? ' = ' : ': ';
}

/** Adds `key: value` (value already encoded) right after `after`, in the object's layout. */
export function addPropAfter(text: string, format: FileFormat, obj: PObj, after: PProp, key: string, valueText: string): Splice {
  const eol = eolOf(text);
  const kv = `${encodeKey(format, key)}${kvSep(text, format, obj)}${valueText}`;
  if (obj.block) {
    const at = lineEndAfter(text, after.end - 1);
    const nl = at === text.length && !text.endsWith('\n') ? eol : '';
    return { start: at, end: at, text: `${nl}${indentAt(text, after.start)}${kv}${eol}` };
  }
  const sep = flowSep(text, obj.start, obj.props, eol);
  return { start: after.end, end: after.end, text: sep + kv };
}

/** Adds `key: value` to an object, after its last key (or as the only one). */
export function addProp(text: string, format: FileFormat, obj: PObj, key: string, valueText: string): Splice {
  const last = obj.props[obj.props.length - 1];
  if (last) return addPropAfter(text, format, obj, last, key, valueText);
  if (obj.block) throw new ConvertError('cannot add to an empty table here');
  return { start: obj.start + 1, end: obj.end - 1, text: `${encodeKey(format, key)}${format === 'toml' ? ' = ' : ': '}${valueText}` };
}

/** Replaces a whole `key: value` with another (same place, same indentation). */
export function replaceProp(format: FileFormat, obj: PObj, p: PProp, key: string, valueText: string, text: string): Splice {
  return { start: p.start, end: p.end, text: `${encodeKey(format, key)}${kvSep(text, format, obj)}${valueText}` };
}

/** An inline object literal with string values, for a key that must be created. */
export function inlineObject(format: FileFormat, entries: Array<[string, string]>): string {
  const body = entries.map(([k, v]) => `${encodeKey(format, k)}${format === 'toml' ? ' = ' : ': '}${encodeString(format, v)}`).join(', ');
  return `{ ${body} }`;
}
