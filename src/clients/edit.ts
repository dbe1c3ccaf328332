/**
 * Puts a new token in place of an old one, changing nothing but the literals that held it,
 * and proves it before handing the text back: the new text is located and parsed again and
 * must mean exactly the old document with the token swapped. Pure: text in, text out.
 */
/* eslint-disable no-control-regex -- finding and escaping control characters is the point of these patterns */
import { toml, yaml } from './lazy.js';
import { locateTokens, type FileFormat, type KeyPath, type TokenSite } from './formats.js';
import { parseJsonValue } from './locate-json.js';
import { parseTomlValue } from './locate-toml.js';
import { parseYamlValue } from './locate-yaml.js';
import { decodeShellLiteral, type ShellFlavor } from './locate-shell.js';

/** Why a replacement was refused. The message never contains a token value. */
export class EditError extends Error {
  /** True when the old token is simply not there (already replaced, or removed by the user). */
  readonly notFound: boolean;
  /** True when the config itself does not parse (the user can fix it); otherwise the new token is what cannot be written. */
  readonly unparsable: boolean;
  constructor(message: string, notFound = false, unparsable = false) {
    super(message);
    this.name = 'EditError';
    this.notFound = notFound;
    this.unparsable = unparsable;
  }
}

interface Splice {
  start: number;
  end: number;
  raw: string;
}

/**
 * Replace every site whose token equals `oldToken` by `newToken`; all other bytes identical.
 * Verifies its own result and throws EditError when verification fails or when oldToken is
 * not found.
 */
export function replaceToken(
  text: string,
  format: FileFormat,
  oldToken: string,
  newToken: string,
): { text: string; replaced: number } {
  checkNewToken(newToken);
  const before = locateTokens(text, format);
  if (before.errors.length > 0) throw new EditError(`cannot parse the config: ${before.errors.join('; ')}`, false, true);
  const matching = before.sites.filter((s) => s.token === oldToken);
  if (matching.length === 0) throw new EditError('the token to replace is not in this config', true);

  // A YAML alias can make two key paths share one literal: splice it once.
  const byRange = new Map<string, Splice>();
  for (const site of matching) {
    const id = `${site.start}:${site.end}`;
    if (byRange.has(id)) continue;
    const raw = text.slice(site.start, site.end);
    const newValue = site.value.slice(0, site.tokenStart) + newToken + site.value.slice(site.tokenEnd);
    byRange.set(id, { start: site.start, end: site.end, raw: encodeLiteral(format, raw, site, oldToken, newToken, newValue) });
  }
  const splices = [...byRange.values()].sort((a, b) => a.start - b.start);
  for (let i = 1; i < splices.length; i++) {
    if ((splices[i]?.start ?? 0) < (splices[i - 1]?.end ?? 0)) throw new EditError('overlapping token literals');
  }
  let out = text;
  for (const sp of [...splices].reverse()) out = out.slice(0, sp.start) + sp.raw + out.slice(sp.end);

  verifyOutside(text, out, splices);
  verifySites(before.sites, out, format, oldToken, newToken);
  verifyDocument(text, out, format, matching, newToken);
  return { text: out, replaced: matching.length };
}

/** A token that would not survive being located again (blank ends, line breaks, a `${` reference) is refused up front. */
function checkNewToken(token: string): void {
  if (token === '' || token.trim() !== token) throw new EditError('the new token is empty or has surrounding whitespace');
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/.test(token)) throw new EditError('the new token contains control characters');
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(token)) {
    throw new EditError('the new token is not well-formed Unicode');
  }
  if (token.includes('${')) throw new EditError('the new token contains "${", which configs treat as a reference');
}

// ---------------------------------------------------------------------------------------
// Encoding one literal.

function encodeLiteral(
  format: FileFormat,
  raw: string,
  site: TokenSite,
  oldToken: string,
  newToken: string,
  newValue: string,
): string {
  const minimal = minimalEdit(format, raw, site.value, oldToken, newToken);
  if (minimal !== undefined && decodeLiteral(format, minimal) === newValue) return minimal;
  const reencoded = reencode(format, raw, newValue);
  if (reencoded === undefined || decodeLiteral(format, reencoded) !== newValue) {
    throw new EditError(`cannot encode the new token in this ${format} literal at offset ${site.start}`);
  }
  return reencoded;
}

function count(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

// Unquoted literals only take what needs no quoting anywhere they may sit.
const SHELL_BARE = /^[A-Za-z0-9_./+=:@%,-]+$/;
const FISH_BARE = /^[A-Za-z0-9_./+=:@,-]+$/;

/** Characters a literal of each style cannot hold as they are. */
const NEEDS_ESCAPE: Record<Style, RegExp> = {
  json: /["\\\u0000-\u001f]/,
  basic: /["\\\u0000-\u001f\u007f]/,
  'ml-basic': /["\\\u0000-\u001f\u007f]/,
  literal: /['\u0000-\u0008\u000a-\u001f\u007f]/,
  'ml-literal': /['\u0000-\u0008\u000a-\u001f\u007f]/,
  double: /["\\\u0000-\u001f\u007f]/,
  single: /['\u0000-\u001f\u007f]/,
  block: /[\u0000-\u001f\u007f]/,
  plain: /^(?![A-Za-z0-9_./+=~-]+$)/,
  bare: /^(?![A-Za-z0-9_./+=:@%,-]+$)/,
  backtick: /[`\\]/,
  mixed: /[^]/,
};

/** Per flavour, since the same quotes escape different things in sh, fish and .env. */
function needsEscape(format: FileFormat, style: Style, token: string): boolean {
  if (format === 'shell' && style === 'double') return /[\\"$`]/.test(token);
  if (format === 'fish' && style === 'double') return /[\\"$]/.test(token);
  if (format === 'fish' && style === 'single') return /[\\']/.test(token);
  if (format === 'fish' && style === 'bare') return !FISH_BARE.test(token);
  if (format === 'dotenv' && style === 'double') return /[\\"$]/.test(token);
  if (format === 'dotenv' && style === 'single') return /['\\]/.test(token);
  return NEEDS_ESCAPE[style].test(token);
}

/**
 * The old token swapped in place inside the raw literal, when the new one needs no escaping
 * there. Only attempted when the token appears exactly once in both the raw and decoded
 * forms, so the occurrence is the one the site means; the caller still decodes the result.
 */
function minimalEdit(format: FileFormat, raw: string, value: string, oldToken: string, newToken: string): string | undefined {
  if (count(raw, oldToken) !== 1 || count(value, oldToken) !== 1) return undefined;
  if (needsEscape(format, styleOf(format, raw), newToken)) return undefined;
  const at = raw.indexOf(oldToken);
  return raw.slice(0, at) + newToken + raw.slice(at + oldToken.length);
}

type Style =
  | 'json'
  | 'basic'
  | 'literal'
  | 'ml-basic'
  | 'ml-literal'
  | 'double'
  | 'single'
  | 'plain'
  | 'block'
  | 'bare'
  | 'backtick'
  | 'mixed';

function styleOf(format: FileFormat, raw: string): Style {
  const c = raw[0];
  switch (format) {
    case 'json':
    case 'jsonc':
      return 'json';
    case 'toml':
      if (raw.startsWith('"""')) return 'ml-basic';
      if (raw.startsWith("'''")) return 'ml-literal';
      return c === '"' ? 'basic' : 'literal';
    case 'yaml':
      if (c === '"') return 'double';
      if (c === "'") return 'single';
      if (c === '|' || c === '>') return 'block';
      return 'plain';
    default: {
      const w = decodeShellLiteralAny(format, raw);
      const styles = w?.styles ?? [];
      return styles.length === 1 ? (styles[0] ?? 'mixed') : 'mixed';
    }
  }
}

function reencode(format: FileFormat, raw: string, v: string): string | undefined {
  const style = styleOf(format, raw);
  switch (format) {
    case 'json':
    case 'jsonc':
      return jsonString(v);
    case 'toml':
      // A literal string cannot hold a quote or control characters; a multi-line one is
      // rewritten on one line (same value, and the only bytes touched are its own).
      return style === 'literal' && !/['\u0000-\u0008\u000a-\u001f\u007f]/.test(v) ? `'${v}'` : tomlBasic(v);
    case 'yaml':
      if (style === 'single' && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/.test(v)) return `'${v.replace(/'/g, "''")}'`;
      if (style === 'plain' && yamlPlainOk(v)) return v;
      if (style === 'block') {
        // The block's range ends after its last line break; keep those so the next line stays put.
        const tail = /(?:[ \t]*\r?\n)*$/.exec(raw)?.[0] ?? '';
        return yamlDouble(v) + tail;
      }
      return yamlDouble(v);
    case 'shell':
      if (style === 'bare' && SHELL_BARE.test(v)) return v;
      if (style === 'double') return `"${v.replace(/[\\"$`]/g, '\\$&')}"`;
      return `'${v.replace(/'/g, `'\\''`)}'`;
    case 'fish':
      if (style === 'bare' && FISH_BARE.test(v)) return v;
      if (style === 'double') return `"${v.replace(/[\\"$]/g, '\\$&')}"`;
      return `'${v.replace(/[\\']/g, '\\$&')}'`;
    case 'dotenv': {
      // .env readers disagree on escapes (node's dotenv decodes none but \n), so a value that
      // needs them goes where they agree: single quotes for `$` (never expanded there).
      if (style === 'bare' && SHELL_BARE.test(v)) return v;
      const singleOk = !/['\\]/.test(v);
      if (style === 'single' && singleOk) return `'${v}'`;
      if (style === 'backtick' && !/[`\\]/.test(v)) return `\`${v}\``;
      if (v.includes('$')) return singleOk ? `'${v}'` : undefined;
      return `"${v.replace(/[\\"]/g, '\\$&')}"`;
    }
    default:
      return undefined;
  }
}

function hex(c: string, width: number): string {
  return (c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(width, '0');
}

function jsonString(v: string): string {
  return `"${v.replace(/["\\\u0000-\u001f]/g, (c) => (c === '"' ? '\\"' : c === '\\' ? '\\\\' : `\\u${hex(c, 4)}`))}"`;
}

function tomlBasic(v: string): string {
  const named: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };
  return `"${v.replace(/["\\\u0000-\u001f\u007f]/g, (c) => named[c] ?? `\\u${hex(c, 4)}`)}"`;
}

function yamlDouble(v: string): string {
  const named: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
  return `"${v.replace(/["\\\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/g, (c) => named[c] ?? `\\u${hex(c, 4)}`)}"`;
}

/** A plain scalar that every YAML reader (1.1 and 1.2 schemas) reads back as this very string. */
function yamlPlainOk(v: string): boolean {
  if (!/^[A-Za-z0-9_./+=~-]+(?: [A-Za-z0-9_./+=~-]+)*$/.test(v)) return false;
  return yamlStandalone(v, '1.1') === v && yamlStandalone(v, '1.2') === v;
}

function yamlStandalone(raw: string, version: '1.1' | '1.2'): unknown {
  try {
    return yaml().parse(raw, { version });
  } catch {
    return undefined;
  }
}

function decodeShellLiteralAny(format: FileFormat, raw: string): ReturnType<typeof decodeShellLiteral> {
  return decodeShellLiteral(format as ShellFlavor, raw);
}

/** What one literal standing alone decodes to; undefined when it is not exactly one valid literal. */
function decodeLiteral(format: FileFormat, raw: string): string | undefined {
  try {
    switch (format) {
      case 'json':
      case 'jsonc': {
        const v: unknown = JSON.parse(raw);
        return typeof v === 'string' ? v : undefined;
      }
      case 'toml': {
        const v = toml().parse(`v = ${raw}`).v;
        return typeof v === 'string' ? v : undefined;
      }
      case 'yaml': {
        const v = yamlStandalone(raw, '1.2');
        if (typeof v !== 'string') return undefined;
        if (styleOf('yaml', raw) === 'plain' && yamlStandalone(raw, '1.1') !== v) return undefined;
        return v;
      }
      default:
        return decodeShellLiteral(format, raw)?.value;
    }
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Verification.

function verifyOutside(oldText: string, newText: string, splices: Splice[]): void {
  let oldPos = 0;
  let newPos = 0;
  for (const sp of splices) {
    const keep = sp.start - oldPos;
    if (oldText.slice(oldPos, sp.start) !== newText.slice(newPos, newPos + keep)) {
      throw new EditError('verification failed: text outside the token literals changed');
    }
    newPos += keep + sp.raw.length;
    oldPos = sp.end;
  }
  if (oldText.slice(oldPos) !== newText.slice(newPos)) {
    throw new EditError('verification failed: text outside the token literals changed');
  }
}

function verifySites(oldSites: TokenSite[], newText: string, format: FileFormat, oldToken: string, newToken: string): void {
  const after = locateTokens(newText, format);
  if (after.errors.length > 0) throw new EditError('verification failed: the rewritten config no longer parses');
  if (after.sites.length !== oldSites.length) throw new EditError('verification failed: the number of token sites changed');
  const byPath = new Map(after.sites.map((s) => [JSON.stringify(s.keyPath), s]));
  for (const old of oldSites) {
    const now = byPath.get(JSON.stringify(old.keyPath));
    if (!now || now.kind !== old.kind) throw new EditError('verification failed: a token site moved or changed kind');
    const want =
      old.token === oldToken
        ? old.value.slice(0, old.tokenStart) + newToken + old.value.slice(old.tokenEnd)
        : old.value;
    const wantToken = old.token === oldToken ? newToken : old.token;
    if (now.value !== want || now.token !== wantToken) throw new EditError('verification failed: a token value is not what was written');
  }
}

function parseValue(format: FileFormat, text: string): unknown {
  switch (format) {
    case 'json':
    case 'jsonc':
      return parseJsonValue(text);
    case 'toml':
      return parseTomlValue(text);
    case 'yaml':
      return parseYamlValue(text);
    default:
      return undefined;
  }
}

function verifyDocument(
  oldText: string,
  newText: string,
  format: FileFormat,
  changed: TokenSite[],
  newToken: string,
): void {
  if (format === 'shell' || format === 'fish' || format === 'dotenv') return;
  let expected: unknown;
  let actual: unknown;
  try {
    expected = parseValue(format, oldText);
    actual = parseValue(format, newText);
  } catch {
    throw new EditError('verification failed: the rewritten config no longer parses');
  }
  // A YAML alias elsewhere (not itself a site) reads the same literal and changes with it.
  const viaAlias = new Map<string, string>();
  for (const site of changed) {
    const now = site.value.slice(0, site.tokenStart) + newToken + site.value.slice(site.tokenEnd);
    expected = setIn(expected, site.keyPath, now);
    if (format === 'yaml') viaAlias.set(site.value, now);
  }
  if (!deepEqual(expected, actual, viaAlias)) throw new EditError('verification failed: the rewritten config means something else');
}

function setIn(root: unknown, path: KeyPath, value: string): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...KeyPath];
  if (root === null || typeof root !== 'object') throw new EditError('verification failed: a token path is missing');
  const container = root as Record<string | number, unknown>;
  if (!Object.prototype.hasOwnProperty.call(container, head)) throw new EditError('verification failed: a token path is missing');
  container[head] = setIn(container[head], rest, value);
  return root;
}

/** Structural equality over parsed documents (plain or null-prototype objects, arrays, dates). */
export function deepEqual(a: unknown, b: unknown, allowed: ReadonlyMap<string, string> = new Map()): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a === 'string' && allowed.get(a) === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && String(a) === String(b);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i], allowed));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const rb = b as Record<string, unknown>;
  const ra = a as Record<string, unknown>;
  return ka.every((k, i) => kb[i] === k && deepEqual(ra[k], rb[k], allowed));
}
