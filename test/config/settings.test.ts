import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_SETTINGS, fileSchemaCache, parseSettings, settingsSchema, type Settings } from '../../src/config/settings.js';

describe('parseSettings', () => {
  it('DEFAULT_SETTINGS is exactly what the schema gives for an empty file', () => {
    expect(settingsSchema().parse({})).toEqual(DEFAULT_SETTINGS);
  });

  it('no file means defaults, and CERTORIX_API_URL overrides apiUrl', () => {
    expect(parseSettings(undefined).settings).toEqual(DEFAULT_SETTINGS);
    expect(parseSettings(undefined, { CERTORIX_API_URL: 'http://127.0.0.1:9999' }).settings?.apiUrl).toBe('http://127.0.0.1:9999');
  });

  it.each([
    ['{"warnAfterDays": "90"}', 'field "warnAfterDays"'],
    ['{"warnAfterDays": 0}', 'field "warnAfterDays"'],
    ['{"warnAfterDayz": 90}', 'field "warnAfterDayz": unknown setting'],
    ['{"hooks": {"postRotate": "echo"}}', 'field "hooks.postRotate"'],
    ['{"hooks": {"preRotate": []}}', 'field "hooks.preRotate": unknown setting'],
    ['{"autoRotate": {"cron": "whenever"}}', 'field "autoRotate.cron"'],
    ['{"extraConfigs": ["~/a/{b/.mcp.json"]}', 'field "extraConfigs.0"'],
    ['{"apiUrl": "http://api.certorix.com"}', 'field "apiUrl"'],
    ['{"apiUrl": "ftp://127.0.0.1"}', 'field "apiUrl"'],
    ['{"retry": {"baseMs": 1000, "maxMs": 10}}', 'field "retry.maxMs"'],
    ['[1, 2]', 'JSON object'],
    ['{ "warnAfterDays": 90, }', 'not valid JSON'],
  ])('%s is refused naming %s', (text, needle) => {
    const r = parseSettings(text);
    expect(r.settings).toBeNull();
    expect(r.errors.join('\n')).toContain(needle);
  });

  it('an insecure CERTORIX_API_URL is refused even when the file is fine', () => {
    const r = parseSettings('{}', { CERTORIX_API_URL: 'http://evil.example.com' });
    expect(r.errors.join()).toContain('CERTORIX_API_URL');
  });

  it('a cached validation is used instead of the schema, and only for the same text', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mtr-cache-'));
    const cache = fileSchemaCache(dir);
    const text = '{"warnAfterDays": 30}';
    expect(parseSettings(text, {}, cache).settings?.warnAfterDays).toBe(30);
    expect(statSync(path.join(dir, 'settings-cache.json')).mode & 0o777).toBe(0o600);
    // A planted cache entry for this exact text wins; proof that zod was skipped.
    const planted = { ...structuredClone(DEFAULT_SETTINGS), warnAfterDays: 31 } as Settings;
    cache.set(text, planted);
    expect(parseSettings(text, {}, cache).settings?.warnAfterDays).toBe(31);
    expect(parseSettings('{"warnAfterDays": 32}', {}, cache).settings?.warnAfterDays).toBe(32);
    expect(JSON.parse(readFileSync(path.join(dir, 'settings-cache.json'), 'utf8')).settings.warnAfterDays).toBe(32);
    // Invalid text is never cached.
    expect(parseSettings('{"warnAfterDays": -1}', {}, cache).settings).toBeNull();
  });
});
