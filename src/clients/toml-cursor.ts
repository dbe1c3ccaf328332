/**
 * The lexical layer shared by this project's two TOML scanners (the locator's, which finds
 * string literals by path, and broker mode's positional tree): whitespace, comments, dotted
 * and quoted keys with their offsets, and the four string forms decoded as TOML does.
 * smol-toml judges the file first; a construct these do not follow throws TomlSyntaxFail.
 */
import type { Lit } from './formats.js';

export class TomlSyntaxFail extends Error {}

export interface ScannedLit extends Lit {
  value: string;
}

export interface KeySpan {
  key: string;
  start: number;
  end: number;
}

export class TomlCursor {
  i = 0;

  constructor(protected readonly s: string) {}

  protected expect(tok: string): void {
    if (!this.s.startsWith(tok, this.i)) throw new TomlSyntaxFail();
    this.i += tok.length;
  }

  protected skipWs(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  protected skipComment(): void {
    if (this.s[this.i] !== '#') return;
    while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
  }

  /** Whitespace, newlines and comments. */
  protected skipBlank(): void {
    for (;;) {
      this.skipWs();
      const c = this.s[this.i];
      if (c === '#') this.skipComment();
      else if (c === '\n' || c === '\r') this.i++;
      else return;
    }
  }

  /** A dotted key (`a."b c".d`), each part with its offsets. */
  protected keySpans(): KeySpan[] {
    const out = [this.simpleKeySpan()];
    for (;;) {
      const save = this.i;
      this.skipWs();
      if (this.s[this.i] !== '.') {
        this.i = save;
        return out;
      }
      this.i++;
      this.skipWs();
      out.push(this.simpleKeySpan());
    }
  }

  protected simpleKeySpan(): KeySpan {
    const start = this.i;
    const c = this.s[this.i];
    if (c === '"' || c === "'") {
      if (this.s.startsWith(c.repeat(3), this.i)) throw new TomlSyntaxFail();
      const lit = this.string();
      return { key: lit.value, start, end: lit.end };
    }
    const m = /^[A-Za-z0-9_-]+/.exec(this.s.slice(this.i, this.i + 256));
    if (!m) throw new TomlSyntaxFail();
    this.i += m[0].length;
    return { key: m[0], start, end: this.i };
  }

  /** Any of the four string forms at `i`, decoded as TOML does. */
  string(): ScannedLit {
    const s = this.s;
    const start = this.i;
    const q = s[start];
    const multi = s.startsWith(`${q}${q}${q}`, start);
    const basic = q === '"';
    this.i += multi ? 3 : 1;
    if (multi) {
      // A newline right after the opening delimiter is not part of the value.
      if (s.startsWith('\r\n', this.i)) this.i += 2;
      else if (s[this.i] === '\n') this.i++;
    }
    let value = '';
    for (;;) {
      if (this.i >= s.length) throw new TomlSyntaxFail();
      const ch = s[this.i] ?? '';
      if (ch === q) {
        if (!multi) {
          this.i++;
          break;
        }
        let run = 0;
        while (s[this.i + run] === q) run++;
        if (run >= 3) {
          // Up to two quotes may sit just before the closing delimiter.
          value += q.repeat(run - 3);
          this.i += run;
          break;
        }
        value += q.repeat(run);
        this.i += run;
        continue;
      }
      if (!multi && (ch === '\n' || ch === '\r')) throw new TomlSyntaxFail();
      if (basic && ch === '\\') {
        value += this.escape(multi);
        continue;
      }
      value += ch;
      this.i++;
    }
    return { start, end: this.i, value };
  }

  private escape(multi: boolean): string {
    const s = this.s;
    const e = s[this.i + 1] ?? '';
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
    const hit = simple[e];
    if (hit !== undefined) {
      this.i += 2;
      return hit;
    }
    const hexLen = e === 'u' ? 4 : e === 'U' ? 8 : e === 'x' ? 2 : 0;
    if (hexLen > 0) {
      const hex = s.slice(this.i + 2, this.i + 2 + hexLen);
      if (!new RegExp(`^[0-9A-Fa-f]{${hexLen}}$`).test(hex)) throw new TomlSyntaxFail();
      this.i += 2 + hexLen;
      return String.fromCodePoint(parseInt(hex, 16));
    }
    if (multi) {
      // Line-ending backslash: it and all whitespace/newlines after it vanish.
      let j = this.i + 1;
      while (s[j] === ' ' || s[j] === '\t') j++;
      if (s[j] === '\n' || s.startsWith('\r\n', j)) {
        while (j < s.length && ' \t\r\n'.includes(s[j] ?? '')) j++;
        this.i = j;
        return '';
      }
    }
    throw new TomlSyntaxFail();
  }
}
