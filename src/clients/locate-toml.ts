/**
 * TOML (Codex `config.toml`) into the neutral tree. smol-toml is the judge of what the file
 * means but gives no positions, so a small scanner walks the same text to find where each
 * string literal lies, keyed by its path; a literal is only trusted when its decoded value
 * equals smol-toml's value at that path.
 */
import { toml } from './lazy.js';
import type { KeyPath, PNode, TreeResult } from './formats.js';
import { TomlCursor, TomlSyntaxFail, type ScannedLit } from './toml-cursor.js';


export function locateTomlTree(text: string): TreeResult {
  let value: Record<string, unknown>;
  try {
    value = toml().parse(text) as Record<string, unknown>;
  } catch (e) {
    return { docs: [], errors: [describeTomlError(e)], warnings: [] };
  }
  const scanner = new TomlScanner(text);
  const warnings: string[] = [];
  try {
    scanner.run();
  } catch {
    // What was scanned before the unsupported construct is still cross-checked below; a
    // token after it stays unlocated and the file is then refused, never edited blind.
    warnings.push(`TOML: unsupported syntax near ${scanner.where()}; positions after it are unknown`);
  }
  return { docs: [{ root: toNode(value, [], scanner.lits), prefix: [] }], errors: [], warnings };
}

/** smol-toml's message ends with a code block quoting the file; keep only its first line. */
function describeTomlError(e: unknown): string {
  if (!(e instanceof toml().TomlError)) return 'TOML parse error';
  const reason = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
  const safe = /^[A-Za-z0-9 ,.:'()-]{1,100}$/.test(reason) ? reason : 'invalid TOML';
  return `TOML parse error at ${e.line}:${e.column}: ${safe}`;
}

function pathKey(path: KeyPath): string {
  return JSON.stringify(path);
}

function toNode(v: unknown, path: KeyPath, lits: Map<string, ScannedLit>): PNode {
  if (typeof v === 'string') {
    const lit = lits.get(pathKey(path));
    return { t: 'str', value: v, lit: lit && lit.value === v ? { start: lit.start, end: lit.end } : undefined };
  }
  if (Array.isArray(v)) return { t: 'arr', items: v.map((item, i) => toNode(item, [...path, i], lits)) };
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const entries = new Map<string, PNode>();
    for (const [k, child] of Object.entries(v)) entries.set(k, toNode(child, [...path, k], lits));
    return { t: 'obj', entries };
  }
  return { t: 'other' };
}

/** The plain JS value of a TOML document, as the edit verifier compares it. */
export function parseTomlValue(text: string): unknown {
  return toml().parse(text);
}

/**
 * Enough of TOML 1.0/1.1 to know the path and offsets of every string value: table and
 * array-of-table headers, dotted and quoted keys, inline tables (multi-line too), arrays,
 * all four string forms, comments. Anything else is skipped as an opaque scalar.
 */
export class TomlScanner extends TomlCursor {
  readonly lits = new Map<string, ScannedLit>();
  private readonly aot = new Map<string, number>();

  where(): string {
    const before = this.s.slice(0, this.i);
    const line = before.split('\n').length;
    return `${line}:${this.i - (before.lastIndexOf('\n') + 1) + 1}`;
  }

  run(): void {
    const s = this.s;
    let table: KeyPath = [];
    if (s.charCodeAt(0) === 0xfeff) this.i = 1;
    for (;;) {
      this.skipBlank();
      if (this.i >= s.length) return;
      if (s[this.i] === '[') {
        const isAot = s[this.i + 1] === '[';
        this.i += isAot ? 2 : 1;
        this.skipWs();
        const keys = this.keys();
        this.skipWs();
        this.expect(isAot ? ']]' : ']');
        table = this.resolveHeader(keys, isAot);
      } else {
        const keys = this.keys();
        this.skipWs();
        this.expect('=');
        this.skipWs();
        this.value([...table, ...keys]);
      }
      this.skipWs();
      this.skipComment();
      if (this.i < s.length && s[this.i] !== '\n' && !s.startsWith('\r\n', this.i)) throw new TomlSyntaxFail();
    }
  }

  /** A header names a path; an array-of-tables segment in it means "its last element". */
  private resolveHeader(keys: string[], isAot: boolean): KeyPath {
    const out: KeyPath = [];
    keys.forEach((k, idx) => {
      out.push(k);
      const id = pathKey(out);
      if (isAot && idx === keys.length - 1) {
        const n = this.aot.get(id) ?? 0;
        this.aot.set(id, n + 1);
        out.push(n);
      } else {
        const n = this.aot.get(id);
        if (n !== undefined) out.push(n - 1);
      }
    });
    return out;
  }

  private keys(): string[] {
    return this.keySpans().map((k) => k.key);
  }

  private value(path: KeyPath): void {
    const s = this.s;
    const c = s[this.i];
    if (c === '"' || c === "'") {
      const lit = this.string();
      this.lits.set(pathKey(path), lit);
      return;
    }
    if (c === '[' || c === '{') {
      const close = c === '[' ? ']' : '}';
      this.i++;
      let idx = 0;
      for (;;) {
        this.skipBlank();
        if (s[this.i] === close) {
          this.i++;
          return;
        }
        if (c === '[') {
          this.value([...path, idx++]);
        } else {
          const keys = this.keys();
          this.skipWs();
          this.expect('=');
          this.skipWs();
          this.value([...path, ...keys]);
        }
        this.skipBlank();
        if (s[this.i] === ',') this.i++;
        else if (s[this.i] !== close) throw new TomlSyntaxFail();
      }
    }
    // Numbers, booleans, dates (which may hold a space): opaque up to a delimiter.
    const start = this.i;
    while (this.i < s.length && !',]}#\r\n'.includes(s[this.i] ?? '')) this.i++;
    if (this.i === start) throw new TomlSyntaxFail();
  }

}
