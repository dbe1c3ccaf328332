/**
 * Shell start-up files (sh/bash/zsh), fish's config.fish and `.env` files: the lines that
 * set a provider's variable (CERTORIX_API_TOKEN, GITHUB_PERSONAL_ACCESS_TOKEN, ...: each
 * provider's `shellVars`) to a literal. Each flavour has its own quoting rules, decoded here
 * exactly enough to know the value and to tell a literal from a reference (`$X`, `$(...)`).
 */
import type { LocateResult, TokenSite } from './formats.js';

export type ShellFlavor = 'shell' | 'fish' | 'dotenv';
export type WordStyle = 'bare' | 'single' | 'double' | 'backtick';

const DEFAULT_VARS: ReadonlyMap<string, string> = new Map([['CERTORIX_API_TOKEN', 'certorix']]);

export interface Word {
  /** Offsets within the scanned string. */
  start: number;
  end: number;
  value: string;
  /** Expands something (a variable, a command): not a literal token. */
  ref: boolean;
  /** Quoting of each adjacent segment (`'a'"b"c` is three). */
  styles: WordStyle[];
}

type Scan = Word | { fail: string };

// Assignment at the start of a command line; the value starts right after the match.
// Built per variable name (names are [A-Z_0-9]: nothing to escape).
interface NameRules {
  sh: RegExp;
  fishSet: RegExp;
  fishExport: RegExp;
  dotenv: RegExp;
  word: RegExp;
  mention: RegExp;
}
const rulesCache = new Map<string, NameRules>();
function rulesFor(name: string): NameRules {
  let r = rulesCache.get(name);
  if (!r) {
    r = {
      sh: new RegExp(`^\\s*(?:(?:export|declare|typeset|readonly|local)(?:\\s+-[A-Za-z]+)*\\s+)?${name}=`),
      fishSet: new RegExp(`^\\s*set((?:\\s+(?:-[A-Za-z]+|--[a-z-]+))*)\\s+${name}(?=\\s|$)`),
      fishExport: new RegExp(`^\\s*export\\s+${name}=`),
      dotenv: new RegExp(`^\\s*(?:export\\s+)?${name}\\s*=[ \\t]*`),
      word: new RegExp(`\\b${name}\\b`),
      mention: new RegExp(`\\b${name}\\s*=`),
    };
    rulesCache.set(name, r);
  }
  return r;
}
// fish `set` options that read or erase rather than assign.
const FISH_NOT_ASSIGN = /^(?:-[A-Za-z]*[eqnSL][A-Za-z]*|--(?:erase|query|names|show|long))$/;

/** `vars`: variable name -> provider (the enabled providers' `shellVars`). */
export function locateShellText(text: string, flavor: ShellFlavor, vars: ReadonlyMap<string, string> = DEFAULT_VARS): LocateResult {
  const names = [...vars.keys()].filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
  const sites: TokenSite[] = [];
  const warnings: string[] = [];
  let lineStart = 0;
  let lineNo = 0;
  while (lineStart <= text.length) {
    const nl = text.indexOf('\n', lineStart);
    const lineEnd = nl < 0 ? text.length : nl;
    let line = text.slice(lineStart, lineEnd);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (lineNo === 0 && line.charCodeAt(0) === 0xfeff) line = ` ${line.slice(1)}`;
    for (const NAME of names) {
      if (!line.includes(NAME)) continue;
      const r = lineSite(line, flavor, rulesFor(NAME));
      const at = `line ${lineNo + 1}`;
      if (r === 'unknown') warnings.push(`${at}: ${NAME} is set in a form not understood; update it by hand`);
      else if (r !== undefined && 'fail' in r) warnings.push(`${at}: ${NAME} value not understood (${r.fail}); update it by hand`);
      else if (r !== undefined && !r.ref && r.value.trim() !== '') {
        const tokenStart = r.value.length - r.value.trimStart().length;
        const tokenEnd = r.value.trimEnd().length;
        sites.push({
          server: '',
          kind: 'shell',
          provider: vars.get(NAME) as string,
          envVar: NAME,
          keyPath: [NAME, lineNo],
          start: lineStart + r.start,
          end: lineStart + r.end,
          value: r.value,
          tokenStart,
          tokenEnd,
          token: r.value.slice(tokenStart, tokenEnd),
        });
      }
    }
    if (nl < 0) break;
    lineStart = nl + 1;
    lineNo++;
  }
  return { sites, errors: [], warnings };
}

/** undefined: nothing to do (comment, unset, reference); 'unknown': mentions the name in a way we do not parse. */
function lineSite(line: string, flavor: ShellFlavor, rules: NameRules): Scan | 'unknown' | undefined {
  if (/^\s*#/.test(line)) return undefined;
  if (flavor === 'dotenv') {
    const m = rules.dotenv.exec(line);
    return m ? scanDotenv(line, m[0].length) : mentionsAssignment(line, rules);
  }
  if (flavor === 'fish') {
    const e = rules.fishExport.exec(line);
    if (e) return scanWord('fish', line, e[0].length);
    const m = rules.fishSet.exec(line);
    if (!m) return setThenName(line, rules) ? 'unknown' : mentionsAssignment(line, rules);
    const opts = (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
    if (opts.some((o) => FISH_NOT_ASSIGN.test(o))) return undefined;
    let i = m[0].length;
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length || ';|&#'.includes(line[i] ?? '')) return undefined;
    return scanWord('fish', line, i);
  }
  const m = rules.sh.exec(line);
  return m ? scanWord('shell', line, m[0].length) : mentionsAssignment(line, rules);
}

/**
 * "set" as a word, and the name as a word somewhere after it. Written as two searches:
 * the single pattern /\bset\b.*\bNAME\b/ retried ".*" from every "set" of a long line,
 * quadratic in its length.
 */
function setThenName(line: string, rules: NameRules): boolean {
  const at = line.search(/\bset\b/);
  return at >= 0 && rules.word.test(line.slice(at + 3));
}

function mentionsAssignment(line: string, rules: NameRules): 'unknown' | undefined {
  return rules.mention.test(line) ? 'unknown' : undefined;
}

/** One sh or fish word starting at `i`, as the shell would see it in an assignment. */
export function scanWord(flavor: 'shell' | 'fish', line: string, i: number): Scan {
  const start = i;
  let value = '';
  let ref = false;
  const styles: WordStyle[] = [];
  const seg = (s: WordStyle): void => {
    if (s !== 'bare' || styles[styles.length - 1] !== 'bare') styles.push(s);
  };
  while (i < line.length) {
    const c = line[i] ?? '';
    if (/\s/.test(c) || ';&|<>'.includes(c)) break;
    if (flavor === 'shell' && (c === '(' || c === ')')) break;
    if (c === "'") {
      seg('single');
      i++;
      for (;;) {
        if (i >= line.length) return { fail: 'unclosed quote' };
        const ch = line[i] ?? '';
        if (ch === "'") break;
        // fish is the only one with escapes inside single quotes.
        if (flavor === 'fish' && ch === '\\' && (line[i + 1] === "'" || line[i + 1] === '\\')) {
          value += line[i + 1];
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      i++;
      continue;
    }
    if (c === '"') {
      seg('double');
      i++;
      const escapable = flavor === 'shell' ? '\\"$`' : '\\"$';
      for (;;) {
        if (i >= line.length) return { fail: 'unclosed quote' };
        const ch = line[i] ?? '';
        if (ch === '"') break;
        if (ch === '\\') {
          const nx = line[i + 1];
          if (nx === undefined) return { fail: 'line continuation' };
          if (escapable.includes(nx)) {
            value += nx;
            i += 2;
            continue;
          }
        } else if (ch === '$' || (flavor === 'shell' && ch === '`')) {
          ref = true;
        }
        value += ch;
        i++;
      }
      i++;
      continue;
    }
    seg('bare');
    if (c === '\\') {
      const nx = line[i + 1];
      if (nx === undefined) return { fail: 'line continuation' };
      // fish gives \n, \x41, ... a meaning; only a backslash before punctuation is plain.
      if (flavor === 'fish' && /[A-Za-z0-9]/.test(nx)) return { fail: 'unsupported escape' };
      value += nx;
      i += 2;
      continue;
    }
    if (c === '$' && flavor === 'shell' && line[i + 1] === "'") return { fail: 'unsupported quoting' };
    if (c === '$' || c === '`') ref = true;
    if (flavor === 'fish' && '(){}*?'.includes(c)) ref = true;
    if (c === '~' && i === start) ref = true;
    value += c;
    i++;
  }
  return { start, end: i, value, ref, styles };
}

/** A `.env` value starting at `i` (quoted, or bare up to an inline ` #` comment). */
export function scanDotenv(line: string, i: number): Scan {
  const q = line[i];
  if (q === '"' || q === "'" || q === '`') {
    let value = '';
    let ref = false;
    let j = i + 1;
    for (;;) {
      if (j >= line.length) return { fail: 'unclosed quote' };
      const ch = line[j] ?? '';
      if (ch === q) break;
      if (q === '"' && ch === '\\' && j + 1 < line.length) {
        const nx = line[j + 1] ?? '';
        const map: Record<string, string> = { '\\': '\\', '"': '"', $: '$', "'": "'", n: '\n', r: '\r', t: '\t' };
        const hit = map[nx];
        value += hit ?? `\\${nx}`;
        j += 2;
        continue;
      }
      if (q === '"' && ch === '$' && /[{A-Za-z_]/.test(line[j + 1] ?? '')) ref = true;
      value += ch;
      j++;
    }
    const style: WordStyle = q === '"' ? 'double' : q === "'" ? 'single' : 'backtick';
    return { start: i, end: j + 1, value, ref, styles: [style] };
  }
  let end = line.length;
  const comment = /(^|\s)#/.exec(line.slice(i));
  if (comment) end = i + comment.index;
  while (end > i && /\s/.test(line[end - 1] ?? '')) end--;
  const value = line.slice(i, end);
  return { start: i, end, value, ref: /\$[{A-Za-z_]/.test(value), styles: ['bare'] };
}

/** Decodes one literal standing alone (as edit.ts re-checks what it wrote); undefined unless it is one whole literal. */
export function decodeShellLiteral(flavor: ShellFlavor, raw: string): Word | undefined {
  const r = flavor === 'dotenv' ? scanDotenv(raw, 0) : scanWord(flavor, raw, 0);
  if ('fail' in r || r.end !== raw.length || r.ref) return undefined;
  return r;
}
