/**
 * Where each part of a config lies in its text: a small positional tree for JSON/JSONC,
 * YAML and TOML, so a server entry can be rewritten by splicing its own bytes (never by
 * re-printing the document, which reflows it). Pure: text in, tree out.
 *
 * Offsets are UTF-16 offsets in the original text. `end` never includes trailing blanks
 * or line breaks; edits that work on whole lines find the line ends themselves.
 */
import { parseTree, type Node, type ParseError } from 'jsonc-parser';
import type { Document, Node as YNode } from 'yaml';
import { toml, yaml } from '../../clients/lazy.js';
import { TomlCursor, TomlSyntaxFail } from '../../clients/toml-cursor.js';
import type { FileFormat, KeyPath } from '../../clients/formats.js';

export interface PStr {
  t: 'str';
  start: number;
  end: number;
  value: string;
}
export interface PArr {
  t: 'arr';
  start: number;
  end: number;
  items: PNode[];
  /** A YAML block sequence (`- x` lines); otherwise `[a, b]` with commas. */
  block: boolean;
}
export interface PObj {
  t: 'obj';
  start: number;
  end: number;
  props: PProp[];
  /** One key per line (YAML block map, TOML table or dotted keys); otherwise `{a, b}` with commas. */
  block: boolean;
}
export interface POther {
  t: 'other';
  start: number;
  end: number;
}
export type PNode = PStr | PArr | PObj | POther;

export interface PProp {
  key: string;
  /** Start of the key (for a TOML table: of its header line). */
  start: number;
  /** End of the key (before `:` / `=`). */
  keyEnd: number;
  /** End of the value. */
  end: number;
  value: PNode;
}

/** The entry (a server's object) and the exact span of its text. */
export interface LocatedEntry {
  node: PObj;
  start: number;
  end: number;
}

export function child(node: PNode | undefined, key: string): PNode | undefined {
  return node?.t === 'obj' ? node.props.find((p) => p.key === key)?.value : undefined;
}

export function prop(node: PNode | undefined, key: string): PProp | undefined {
  return node?.t === 'obj' ? node.props.find((p) => p.key === key) : undefined;
}

export function getIn(node: PNode | undefined, path: KeyPath): PNode | undefined {
  let cur = node;
  for (const k of path) {
    if (cur?.t === 'obj' && typeof k === 'string') cur = child(cur, k);
    else if (cur?.t === 'arr' && typeof k === 'number') cur = cur.items[k];
    else return undefined;
  }
  return cur;
}

/** The positional tree of a whole document; null when it does not parse. */
export function parsePositions(text: string, format: FileFormat): PNode | null {
  switch (format) {
    case 'json':
    case 'jsonc':
      return jsonPositions(text);
    case 'yaml':
      return yamlPositions(text);
    case 'toml':
      return tomlPositions(text);
    default:
      return null;
  }
}

/** Finds a server entry by its key path (as formats.ts reports it) and the span of its text. */
export function locateEntry(text: string, format: FileFormat, entryPath: KeyPath): LocatedEntry | null {
  const root = parsePositions(text, format);
  if (!root) return null;
  const node = getIn(root, entryPath);
  if (node?.t !== 'obj') return null;
  if (format === 'toml' && node.block) {
    // A TOML table entry: its header line to the end of its last line (sub-tables included),
    // which must all be one contiguous run of the file.
    const span = tomlTableSpan(text, entryPath.map(String));
    return span ? { node, start: span.start, end: span.end } : null;
  }
  return { node, start: node.start, end: node.end };
}

// ---------------------------------------------------------------------------------------
// JSON / JSONC

function jsonPositions(text: string): PNode | null {
  const shift = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const body = shift ? text.slice(1) : text;
  const errors: ParseError[] = [];
  const tree = parseTree(body, errors, { allowTrailingComma: true, disallowComments: false });
  if (!tree || errors.length) return null;
  return fromJson(tree, shift);
}

function fromJson(n: Node, shift: number): PNode {
  const start = n.offset + shift;
  const end = start + n.length;
  switch (n.type) {
    case 'object': {
      const props: PProp[] = [];
      for (const p of n.children ?? []) {
        const [k, v] = p.children ?? [];
        if (!k || !v || typeof k.value !== 'string') continue;
        props.push({ key: k.value, start: k.offset + shift, keyEnd: k.offset + shift + k.length, end: v.offset + shift + v.length, value: fromJson(v, shift) });
      }
      return { t: 'obj', start, end, props: dedupe(props), block: false };
    }
    case 'array':
      return { t: 'arr', start, end, items: (n.children ?? []).map((c) => fromJson(c, shift)), block: false };
    case 'string':
      return { t: 'str', start, end, value: String(n.value) };
    default:
      return { t: 'other', start, end };
  }
}

/** JSON.parse and YAML keep the last of duplicate keys; lookups see the same one. */
function dedupe(props: PProp[]): PProp[] {
  const last = new Map(props.map((p, i) => [p.key, i]));
  return props.filter((p, i) => last.get(p.key) === i);
}

// ---------------------------------------------------------------------------------------
// YAML

function yamlPositions(text: string): PNode | null {
  const docs = yaml().parseAllDocuments(text);
  if (!Array.isArray(docs) || docs.length === 0) return null;
  if (docs.some((d) => d.errors.length > 0)) return null;
  const conv = (d: Document.Parsed) => fromYaml(d.contents, text);
  if (docs.length === 1) return conv(docs[0] as Document.Parsed);
  // Multi-document streams: key paths start with the document's index (as formats.ts does).
  const items = docs.map(conv);
  return { t: 'arr', start: 0, end: text.length, items, block: true };
}

function trimEnd(text: string, end: number): number {
  while (end > 0 && ' \t\r\n'.includes(text[end - 1] ?? '')) end--;
  return end;
}

function fromYaml(node: unknown, text: string): PNode {
  const Y = yaml();
  const range = (node as YNode | null)?.range;
  const start = range?.[0] ?? 0;
  const end = range ? trimEnd(text, range[1]) : 0;
  if (Y.isMap(node)) {
    const props: PProp[] = [];
    for (const pair of node.items) {
      if (!Y.isPair(pair) || !Y.isScalar(pair.key) || !pair.key.range) continue;
      const value = pair.value === null ? ({ t: 'other', start: pair.key.range[1], end: pair.key.range[1] } as POther) : fromYaml(pair.value, text);
      props.push({ key: String(pair.key.value), start: pair.key.range[0], keyEnd: pair.key.range[1], end: Math.max(value.end, pair.key.range[1]), value });
    }
    return { t: 'obj', start, end, props: dedupe(props), block: !node.flow };
  }
  if (Y.isSeq(node)) return { t: 'arr', start, end, items: node.items.map((n) => fromYaml(n, text)), block: !node.flow };
  // Aliases are left opaque: an entry reached through one is not edited.
  if (Y.isScalar(node) && typeof node.value === 'string' && range) return { t: 'str', start, end: range[1], value: node.value };
  return { t: 'other', start, end };
}

// ---------------------------------------------------------------------------------------
// TOML

interface Header {
  path: string[];
  start: number;
  /** End of its last content line (or of the header itself), line break excluded. */
  lastEnd: number;
}

/**
 * A positional scanner for TOML: tables and dotted keys become block objects, inline
 * tables and arrays flow nodes. smol-toml must accept the text first; anything this
 * scanner does not follow makes the whole tree unavailable (nothing is edited blind).
 */
function tomlPositions(text: string): PNode | null {
  try {
    toml().parse(text);
    return new TomlPos(text).run().root;
  } catch {
    return null;
  }
}

function tomlTableSpan(text: string, entryPath: string[]): { start: number; end: number } | null {
  let headers: Header[];
  try {
    headers = new TomlPos(text).run().headers;
  } catch {
    return null;
  }
  const under = (h: Header) => h.path.length >= entryPath.length && entryPath.every((k, i) => h.path[i] === k);
  const first = headers.findIndex((h) => under(h) && h.path.length === entryPath.length);
  if (first < 0) return null;
  let last = first;
  while (last + 1 < headers.length && under(headers[last + 1] as Header)) last++;
  // Another section of this entry later in the file: it is not one span, so not ours to splice.
  if (headers.slice(last + 1).some(under)) return null;
  if (headers.slice(0, first).some(under)) return null;
  return { start: (headers[first] as Header).start, end: (headers[last] as Header).lastEnd };
}

class TomlPos extends TomlCursor {
  readonly root: PObj;
  readonly headers: Header[] = [];
  constructor(s: string) {
    super(s);
    this.root = { t: 'obj', start: 0, end: s.length, props: [], block: true };
  }

  run(): this {
    const s = this.s;
    let table = this.root;
    let header: Header | undefined;
    if (s.charCodeAt(0) === 0xfeff) this.i = 1;
    for (;;) {
      this.skipBlank();
      if (this.i >= s.length) return this;
      const lineStart = this.i;
      if (s[this.i] === '[') {
        if (s[this.i + 1] === '[') {
          // Arrays of tables hold no MCP server entries we convert; their keys go nowhere.
          this.i += 2;
          this.skipWs();
          this.keySpans();
          this.skipWs();
          this.expect(']]');
          table = { t: 'obj', start: lineStart, end: this.i, props: [], block: true };
          header = { path: ['\u0000aot'], start: lineStart, lastEnd: this.i };
          this.headers.push(header);
        } else {
          this.i++;
          this.skipWs();
          const keys = this.keySpans().map((k) => k.key);
          this.skipWs();
          this.expect(']');
          table = this.descend(this.root, keys, lineStart, this.i);
          header = { path: keys, start: lineStart, lastEnd: this.i };
          this.headers.push(header);
        }
      } else {
        const keys = this.keySpans();
        this.skipWs();
        this.expect('=');
        this.skipWs();
        const value = this.value();
        const parent = this.descend(table, keys.slice(0, -1).map((k) => k.key), keys[0]?.start ?? lineStart, value.end);
        const last = keys[keys.length - 1] as { key: string; start: number; end: number };
        parent.props.push({ key: last.key, start: keys[0]?.start ?? lineStart, keyEnd: last.end, end: value.end, value });
        if (header) header.lastEnd = value.end;
        this.growTo(table, value.end);
      }
      this.skipWs();
      this.skipComment();
      if (this.i < s.length && s[this.i] !== '\n' && !s.startsWith('\r\n', this.i)) throw new TomlSyntaxFail();
    }
  }

  private growTo(o: PObj, end: number): void {
    if (end > o.end) o.end = end;
  }

  /** The object at `keys` under `from`, created (as a block object) where missing. */
  private descend(from: PObj, keys: string[], start: number, end: number): PObj {
    let cur = from;
    for (const k of keys) {
      let p = cur.props.find((x) => x.key === k);
      if (!p) {
        p = { key: k, start, keyEnd: start, end, value: { t: 'obj', start, end, props: [], block: true } };
        cur.props.push(p);
      }
      if (p.value.t !== 'obj') throw new TomlSyntaxFail();
      if (end > p.end) p.end = end;
      this.growTo(p.value, end);
      cur = p.value;
    }
    return cur;
  }

  private str(): PStr {
    const lit = this.string();
    return { t: 'str', start: lit.start, end: lit.end, value: lit.value };
  }

  private value(): PNode {
    const s = this.s;
    const c = s[this.i];
    const start = this.i;
    if (c === '"' || c === "'") return this.str();
    if (c === '[') {
      this.i++;
      const items: PNode[] = [];
      for (;;) {
        this.skipBlank();
        if (s[this.i] === ']') {
          this.i++;
          return { t: 'arr', start, end: this.i, items, block: false };
        }
        items.push(this.value());
        this.skipBlank();
        if (s[this.i] === ',') this.i++;
        else if (s[this.i] !== ']') throw new TomlSyntaxFail();
      }
    }
    if (c === '{') {
      this.i++;
      const obj: PObj = { t: 'obj', start, end: start, props: [], block: false };
      for (;;) {
        this.skipBlank();
        if (s[this.i] === '}') {
          this.i++;
          obj.end = this.i;
          return obj;
        }
        const keys = this.keySpans();
        this.skipWs();
        this.expect('=');
        this.skipWs();
        const v = this.value();
        // Dotted keys inside an inline table: a nested flow object.
        let parent = obj;
        for (const k of keys.slice(0, -1)) {
          let p = parent.props.find((x) => x.key === k.key);
          if (!p) parent.props.push((p = { key: k.key, start: k.start, keyEnd: k.end, end: v.end, value: { t: 'obj', start: k.start, end: v.end, props: [], block: false } }));
          if (p.value.t !== 'obj') throw new TomlSyntaxFail();
          parent = p.value;
        }
        const last = keys[keys.length - 1] as { key: string; start: number; end: number };
        parent.props.push({ key: last.key, start: keys[0]?.start ?? start, keyEnd: last.end, end: v.end, value: v });
        this.skipBlank();
        if (s[this.i] === ',') this.i++;
        else if (s[this.i] !== '}') throw new TomlSyntaxFail();
      }
    }
    while (this.i < s.length && !',]}#\r\n'.includes(s[this.i] ?? '')) this.i++;
    if (this.i === start) throw new TomlSyntaxFail();
    return { t: 'other', start, end: trimEnd(s, this.i) };
  }
}
