import { createRequire } from 'node:module';

/**
 * node:crypto is loaded at the first fingerprint, not at import: the exec wrapper (resident
 * beside every converted stdio server) holds Secrets but rarely needs a fingerprint, and
 * loading node:crypto keeps ~0.7 MiB resident for the life of a process (docs/benchmarks.md).
 */
let sha256: ((text: string) => string) | undefined;

/** node:crypto, loaded now. process.getBuiltinModule is in Node >= 20.16 and >= 22.3; 22.0-22.2 (which `engines` allows) lack it. */
function loadCrypto(): typeof import('node:crypto') {
  const builtin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return (builtin ? builtin.call(process, 'node:crypto') : createRequire(import.meta.url)('node:crypto')) as typeof import('node:crypto');
}

/** First 12 hex characters of SHA-256 over the token's UTF-8 bytes (the contract's identity). */
export function fingerprint(token: string): string {
  if (!sha256) {
    const { createHash } = loadCrypto();
    sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
  }
  return sha256(token).slice(0, 12);
}

export function isFingerprint(s: string): boolean {
  return /^[0-9a-f]{12}$/.test(s);
}
