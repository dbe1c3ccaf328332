import { describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { Secret, scrubSecrets } from '../src/secret.js';
import { fingerprint } from '../src/fingerprint.js';

// The fingerprint is computed at first read (so the exec wrapper never loads node:crypto for
// it), and must still behave as the plain own property it was.
describe('Secret', () => {
  const value = 'ctx_secret_test_' + 'z'.repeat(24);
  const fp = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);

  it('has the contract fingerprint: the first 12 hex of SHA-256 of the value', () => {
    expect(new Secret(value).fingerprint).toBe(fp);
    expect(fingerprint(value)).toBe(fp);
  });

  it('keeps fingerprint an own enumerable property: spreads, keys and deep equality see it', () => {
    const s = new Secret(value);
    expect(Object.keys(s)).toEqual(['fingerprint']);
    expect({ ...s }).toEqual({ fingerprint: fp });
    expect(new Secret(value)).toEqual(new Secret(value));
    expect(new Secret(value)).not.toEqual(new Secret(value + 'x'));
  });

  it('loads node:crypto without process.getBuiltinModule too (Node 22.0-22.2 lack it)', async () => {
    const saved = Object.getOwnPropertyDescriptor(process, 'getBuiltinModule');
    delete (process as { getBuiltinModule?: unknown }).getBuiltinModule;
    try {
      expect((process as { getBuiltinModule?: unknown }).getBuiltinModule).toBeUndefined();
      vi.resetModules();
      const fresh = (await import('../src/fingerprint.js')).fingerprint;
      expect(fresh).not.toBe(fingerprint);
      expect(fresh(value)).toBe(fp);
    } finally {
      if (saved) Object.defineProperty(process, 'getBuiltinModule', saved);
    }
  });

  it('shows only the fingerprint in strings, JSON and inspect; scrubs the value from text', () => {
    const s = new Secret(value);
    for (const shown of [String(s), JSON.stringify({ s }), inspect(s), inspect({ s })]) {
      expect(shown).toContain(fp);
      expect(shown).not.toContain(value);
    }
    expect(s.reveal()).toBe(value);
    expect(scrubSecrets(`token=${value};`)).toBe(`token=[token ${fp}];`);
  });
});
