import { createHash } from 'node:crypto';

/** First 12 hex characters of SHA-256 over the token's UTF-8 bytes (the contract's identity). */
export function fingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

export function isFingerprint(s: string): boolean {
  return /^[0-9a-f]{12}$/.test(s);
}
