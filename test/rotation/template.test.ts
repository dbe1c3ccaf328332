import { describe, expect, it } from 'vitest';
import { replaceToken } from '../../src/clients/edit.js';
import { clientById, formatForPath } from '../../src/clients/catalog.js';
import { fillTemplate } from '../../src/rotation/run.js';
import { FIXTURES } from '../helpers/fixtures.js';

const OLD = 'ctx_OldTokenValue0123456789abcdefABCDEF';
const PLACEHOLDER = 'ctxPLACEHOLDER' + 'ab12'.repeat(15);

describe('fillTemplate: the post-call fast path equals a full replaceToken', () => {
  it.each(FIXTURES.map((f) => [f.client, f] as const))('%s', (_c, f) => {
    const format = f.client === 'shell' ? formatForPath(f.rel) : clientById(f.client).format;
    const text = f.content(OLD);
    const planned = replaceToken(text, format, OLD, PLACEHOLDER);
    const template = { text: planned.text, placeholder: PLACEHOLDER, count: planned.replaced };
    const fresh = 'ctx_NewTokenValue9876543210zyxwvuZYXWVU';
    expect(fillTemplate(template, fresh)).toBe(replaceToken(text, format, OLD, fresh).text);
    expect(fillTemplate(template, fresh)).toBe(f.content(fresh));
  });

  it.each([['a quote', 'ctx_a"bcdefghijklmnop'], ['a space', 'ctx_abcdefgh ijklmnop'], ['too short for YAML safety', 'yes'], ['a leading digit', '1234567890abcdefgh'], ['a dash', 'ctx-abcdefghijklmnop']])(
    'declines a token with %s (the full path escapes it)',
    (_n, token) => {
      expect(fillTemplate({ text: `x ${PLACEHOLDER} y`, placeholder: PLACEHOLDER, count: 1 }, token)).toBeNull();
    },
  );

  it('declines when the placeholder count does not match the plan', () => {
    expect(fillTemplate({ text: `${PLACEHOLDER} ${PLACEHOLDER}`, placeholder: PLACEHOLDER, count: 1 }, 'ctx_abcdefghijklmnop')).toBeNull();
  });
});
