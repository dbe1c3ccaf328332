import { inspect } from 'node:util';
import { fingerprint } from './fingerprint.js';

/**
 * A token value wrapped so it cannot leak by accident: string conversion, JSON,
 * util.inspect and pino serialisation all show only the fingerprint. The raw value
 * comes out only through `reveal()`, which is called in exactly the places that must
 * have it (the Authorization header, the config substitution, the journal).
 */
export class Secret {
  readonly #value: string;
  /** Computed at first read (see the constructor). */
  declare readonly fingerprint: string;

  constructor(value: string) {
    this.#value = value;
    // An own, enumerable property as before (deep equality and spreads still see it), but
    // computed at first read: hashing loads node:crypto, which a process that only carries
    // the token (the exec wrapper) otherwise never needs.
    let fp: string | undefined;
    Object.defineProperty(this, 'fingerprint', { enumerable: true, get: () => (fp ??= fingerprint(value)) });
    knownSecrets.add(value);
  }

  reveal(): string {
    return this.#value;
  }

  equals(other: Secret): boolean {
    return other.#value === this.#value;
  }

  toString(): string {
    return `[token ${this.fingerprint}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Every token value this process has seen, so that log and output streams can scrub
 * them as a second line of defence (the first is never formatting a raw value).
 */
const knownSecrets = new Set<string>();

export function scrubSecrets(text: string): string {
  let out = text;
  for (const v of knownSecrets) {
    // Tokens shorter than this would scrub ordinary words; they are not plausible API tokens.
    if (v.length < 8) continue;
    if (out.includes(v)) out = out.split(v).join(`[token ${fingerprintOf(v)}]`);
    const escaped = JSON.stringify(v).slice(1, -1);
    if (escaped !== v && out.includes(escaped)) out = out.split(escaped).join(`[token ${fingerprintOf(v)}]`);
  }
  return out;
}

const fpCache = new Map<string, string>();
function fingerprintOf(v: string): string {
  let fp = fpCache.get(v);
  if (!fp) {
    fp = fingerprint(v);
    fpCache.set(v, fp);
  }
  return fp;
}
