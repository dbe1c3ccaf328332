/**
 * Every way to feed `raw` to an incremental parser: whole, in two pieces split at each byte
 * boundary, and one byte at a time. Pieces are copies (separate reads), never views of one
 * buffer. Past 4 KiB the two-piece splits are sampled (every 61st boundary plus the last 8),
 * to keep the suites fast. Used by the HTTP/1.1 parsers' table tests (endpoint-http1,
 * endpoint-request-parser): a parser must give the same result however TCP cuts its input.
 */
export function feedings(raw: Buffer): Array<[string, Buffer[]]> {
  const copy = (b: Buffer): Buffer => Buffer.from(b);
  const out: Array<[string, Buffer[]]> = [['whole', [copy(raw)]]];
  for (let i = 1; i < raw.length; i++) {
    if (raw.length > 4096 && i % 61 !== 0 && i < raw.length - 8) continue;
    out.push([`split at ${i}`, [copy(raw.subarray(0, i)), copy(raw.subarray(i))]]);
  }
  const single: Buffer[] = [];
  for (let i = 0; i < raw.length; i++) single.push(copy(raw.subarray(i, i + 1)));
  out.push(['byte by byte', single]);
  return out;
}
