/**
 * `new Date(ms).toISOString()` without a Date object, for processes that stay resident.
 * Why: V8's first toISOString() on a Date loads its time zone support (ICU's zone data), and
 * those pages stay resident for the life of the process; the exec wrapper, which sits beside
 * every converted stdio server all day, logged a line at each rotation and paid ~0.8 MiB for
 * it (measured with /proc/<pid>/pagemap on the bench's idle wrapper: docs/benchmarks.md).
 * The calendar arithmetic is Howard Hinnant's civil_from_days (proleptic Gregorian, as
 * ECMAScript's Date). Outside years 0000-9999, or for a non-finite value, it falls back to Date.
 */
const DAY_MS = 86_400_000;

export function isoTime(ms: number = Date.now()): string {
  if (!Number.isFinite(ms)) return new Date(ms).toISOString();
  const t = Math.trunc(ms);
  const days = Math.floor(t / DAY_MS);
  let rest = t - days * DAY_MS;
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  // civil_from_days: eras of 400 years (146,097 days), years starting on March 1st.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) return new Date(ms).toISOString();
  const p2 = (n: number) => (n < 10 ? '0' : '') + n;
  const p3 = (n: number) => (n < 10 ? '00' : n < 100 ? '0' : '') + n;
  return `${String(year).padStart(4, '0')}-${p2(month)}-${p2(day)}T${p2(hour)}:${p2(minute)}:${p2(second)}.${p3(milli)}Z`;
}
