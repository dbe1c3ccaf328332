import { loadBuiltin } from './builtin.js';

/**
 * node:crypto is loaded at the first fingerprint, not at import: the exec wrapper (resident
 * beside every converted stdio server) holds Secrets but rarely needs a fingerprint, and
 * loading node:crypto keeps ~0.7 MiB resident for the life of a process (docs/benchmarks.md).
 */
let sha256: ((text: string) => string) | undefined;

/** First 12 hex characters of SHA-256 over the token's UTF-8 bytes (the contract's identity). */
export function fingerprint(token: string): string {
  if (!sha256) {
    const { createHash } = loadBuiltin<typeof import('node:crypto')>('node:crypto');
    sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
  }
  return sha256(token).slice(0, 12);
}

export function isFingerprint(s: string): boolean {
  return /^[0-9a-f]{12}$/.test(s);
}
