/**
 * JSON / JSONC into the neutral tree, with every string literal's offsets. Both flavours
 * accept comments and trailing commas on read; a strict-JSON file is only ever edited inside
 * one string literal, so it never gains either.
 */
import { parse, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import type { PNode, TreeResult } from './formats.js';

/**
 * Line starts of the last text asked about: a file with thousands of warnings (duplicate
 * keys) must not rescan the text from the top for each one.
 */
let lineIndex: { text: string; starts: number[] } | undefined;

function lineStarts(text: string): number[] {
  if (lineIndex?.text === text) return lineIndex.starts;
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  lineIndex = { text, starts };
  return starts;
}

/** 1-based line:column of a UTF-16 offset, for messages that must not quote the text. */
export function lineCol(text: string, offset: number): string {
  const stop = Math.max(0, Math.min(offset, text.length));
  const starts = lineStarts(text);
  // The last line start at or before `stop`.
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= stop) lo = mid;
    else hi = mid - 1;
  }
  return `${lo + 1}:${stop - (starts[lo] ?? 0) + 1}`;
}

const OPTIONS = { allowTrailingComma: true, disallowComments: false } as const;

/** jsonc-parser rejects a byte-order mark, so it is parsed away and offsets shifted back. */
function splitBom(text: string): { body: string; shift: number } {
  return text.charCodeAt(0) === 0xfeff ? { body: text.slice(1), shift: 1 } : { body: text, shift: 0 };
}

/**
 * Bounds on what one file may cost (issue: a 12 KB file of nested arrays overflowed the
 * stack; a 10 MB array of numbers took 760 MB). Real configs nest a dozen levels and hold
 * a few thousand values; a 10 MB ~/.claude.json about 150,000.
 */
export const MAX_JSON_DEPTH = 256;
export const MAX_JSON_VALUES = 1_000_000;

interface Shape {
  /** Only whitespace and comments. */
  blank: boolean;
  depth: number;
  /** Roughly the number of values (separators and openers), an upper bound for the tree's size. */
  values: number;
}

/**
 * One linear pass over the text, outside strings and comments: how deep it nests and how
 * many values it holds, so the recursive parser never meets a document it cannot afford.
 * Unterminated strings or comments simply end the pass; the parser reports them.
 */
export function jsonShape(body: string): Shape {
  let depth = 0;
  let max = 0;
  let values = 0;
  let blank = true;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const c = body.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (c === 0x2f /* / */ && body.charCodeAt(i + 1) === 0x2f) {
      const nl = body.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl;
      continue;
    }
    if (c === 0x2f && body.charCodeAt(i + 1) === 0x2a /* * */) {
      const end = body.indexOf('*/', i + 2);
      if (end < 0) {
        // Unterminated: not blank; the parser says where.
        blank = false;
        break;
      }
      i = end + 1;
      continue;
    }
    blank = false;
    if (c === 0x22 /* " */) {
      // To the closing quote: one not preceded by an odd run of backslashes (indexOf is native speed).
      let q = body.indexOf('"', i + 1);
      for (;;) {
        if (q < 0) return { blank, depth: max, values };
        let b = 0;
        while (body.charCodeAt(q - 1 - b) === 0x5c) b++;
        if (b % 2 === 0) break;
        q = body.indexOf('"', q + 1);
      }
      i = q;
      continue;
    }
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      values++;
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2c /* , */) {
      values++;
    }
  }
  return { blank, depth: max, values };
}

function shapeError(shape: Shape): string | undefined {
  if (shape.depth > MAX_JSON_DEPTH) return `JSON nested ${shape.depth} levels deep, more than the ${MAX_JSON_DEPTH} a config may be`;
  if (shape.values > MAX_JSON_VALUES) return `JSON holds about ${shape.values} values, more than the ${MAX_JSON_VALUES} a config may hold`;
  return undefined;
}

export function locateJsonTree(text: string): TreeResult {
  const { body, shift } = splitBom(text);
  const shape = jsonShape(body);
  if (shape.blank) return { docs: [], errors: [], warnings: [] };
  const limit = shapeError(shape);
  if (limit) return { docs: [], errors: [limit], warnings: [] };
  const errs: ParseError[] = [];
  const tree = parseTree(body, errs, OPTIONS);
  if (errs.length > 0 || !tree) {
    const errors = errs.map((e) => `JSON parse error at ${lineCol(body, e.offset)}: ${printParseErrorCode(e.error)}`);
    return { docs: [], errors: errors.length > 0 ? errors : ['JSON parse error at 1:1: no value'], warnings: [] };
  }
  const warnings: string[] = [];
  const root = convert(tree, shift, body, warnings);
  return { docs: [{ root, prefix: [] }], errors: [], warnings };
}

function convert(node: Node, shift: number, body: string, warnings: string[]): PNode {
  const pos = node.offset + shift;
  switch (node.type) {
    case 'object': {
      const entries = new Map<string, PNode>();
      for (const prop of node.children ?? []) {
        const [keyNode, valueNode] = prop.children ?? [];
        if (!keyNode || !valueNode || typeof keyNode.value !== 'string') continue;
        if (entries.has(keyNode.value)) {
          // JSON.parse (what the clients use) keeps the last one; so do we.
          warnings.push(`duplicate key at ${lineCol(body, keyNode.offset)}; the last one wins`);
          entries.delete(keyNode.value);
        }
        entries.set(keyNode.value, convert(valueNode, shift, body, warnings));
      }
      return { t: 'obj', entries, pos };
    }
    case 'array':
      return { t: 'arr', items: (node.children ?? []).map((c) => convert(c, shift, body, warnings)), pos };
    case 'string':
      return { t: 'str', value: String(node.value), lit: { start: pos, end: pos + node.length }, pos };
    default:
      return { t: 'other', pos };
  }
}

/** The plain JS value of a JSON/JSONC document, as the edit verifier compares it. */
export function parseJsonValue(text: string): unknown {
  const { body } = splitBom(text);
  // Strict JSON (most configs, and a 10 MB ~/.claude.json) parses natively, many times faster
  // (and V8's parser is iterative: no depth limit to guard); an edit only swaps a string
  // literal for another valid one, so it stays strict, and both sides of a comparison go
  // through the same parser.
  try {
    return JSON.parse(body) as unknown;
  } catch {
    // blank, comments or trailing commas: JSONC below, whose parser recurses
  }
  const shape = jsonShape(body);
  if (shape.blank) return undefined;
  if (shapeError(shape)) throw new Error('JSON too deep or too large');
  const errs: ParseError[] = [];
  const value: unknown = parse(body, errs, OPTIONS);
  if (errs.length > 0) throw new Error('JSON parse error');
  return value;
}
