import { describe, expect, it } from 'vitest';
import { isoTime } from '../src/iso-time.js';

// Date.prototype.toISOString is the oracle: isoTime must give the same string for every time.
describe('isoTime', () => {
  const cases: [string, number][] = [
    ['the epoch', 0],
    ['one ms before the epoch', -1],
    ['a leap day', Date.UTC(2024, 1, 29, 23, 59, 59, 999)],
    ['the day after a leap day', Date.UTC(2024, 2, 1)],
    ['2100 is not a leap year', Date.UTC(2100, 1, 28, 12)],
    ['2000 is one', Date.UTC(2000, 1, 29, 1, 2, 3, 4)],
    ['new year', Date.UTC(2027, 0, 1, 0, 0, 0, 0)],
    ['new year eve', Date.UTC(2026, 11, 31, 23, 59, 59, 999)],
    ['year 0', new Date('0000-03-01T00:00:00.000Z').getTime()],
    ['year 9999, last ms', Date.UTC(9999, 11, 31, 23, 59, 59, 999)],
    ['a fraction of a ms', 1_700_000_000_123.9],
    ['before 1970 with ms', Date.UTC(1969, 6, 20, 20, 17, 40, 5)],
  ];
  it.each(cases)('%s', (_name, ms) => {
    expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('matches toISOString over 20,000 times spread across years 0-9999', () => {
    const min = new Date('0000-01-01T00:00:00.000Z').getTime();
    const max = new Date('9999-12-31T23:59:59.999Z').getTime();
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(min + rnd() * (max - min));
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('outside years 0-9999 it gives what Date gives (extended years), and throws as Date does for an invalid time', () => {
    const before = new Date('0000-01-01T00:00:00.000Z').getTime() - 1;
    const after = new Date('9999-12-31T23:59:59.999Z').getTime() + 1;
    expect(isoTime(before)).toBe('-000001-12-31T23:59:59.999Z');
    expect(isoTime(after)).toBe('+010000-01-01T00:00:00.000Z');
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });

  it('defaults to now', () => {
    const before = Date.now();
    const t = Date.parse(isoTime());
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});
