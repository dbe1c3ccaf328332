/**
 * JSON / JSONC into the neutral tree, with every string literal's offsets. Both flavours
 * accept comments and trailing commas on read; a strict-JSON file is only ever edited inside
 * one string literal, so it never gains either.
 */
import { parse, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import type { PNode, TreeResult } from './formats.js';

/** 1-based line:column of a UTF-16 offset, for messages that must not quote the text. */
export function lineCol(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(offset, text.length);
  for (let i = 0; i < stop; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `${line}:${stop - lineStart + 1}`;
}

const OPTIONS = { allowTrailingComma: true, disallowComments: false } as const;

/** jsonc-parser rejects a byte-order mark, so it is parsed away and offsets shifted back. */
function splitBom(text: string): { body: string; shift: number } {
  return text.charCodeAt(0) === 0xfeff ? { body: text.slice(1), shift: 1 } : { body: text, shift: 0 };
}

/** Whitespace and comments only: nothing to parse, nothing to find (an empty config is not broken). */
function isBlank(body: string): boolean {
  // Fast answer for the usual case, a document that starts (after blanks) with a value.
  const first = body.search(/\S/);
  if (first < 0) return true;
  if (body[first] !== '/') return false;
  return body.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g, '').trim() === '';
}

export function locateJsonTree(text: string): TreeResult {
  const { body, shift } = splitBom(text);
  if (isBlank(body)) return { docs: [], errors: [], warnings: [] };
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
  if (isBlank(body)) return undefined;
  // Strict JSON (most configs, and a 10 MB ~/.claude.json) parses natively, many times faster;
  // an edit only swaps a string literal for another valid one, so it stays strict, and both
  // sides of a comparison go through the same parser.
  try {
    return JSON.parse(body) as unknown;
  } catch {
    // comments or trailing commas: JSONC below
  }
  const errs: ParseError[] = [];
  const value: unknown = parse(body, errs, OPTIONS);
  if (errs.length > 0) throw new Error('JSON parse error');
  return value;
}
