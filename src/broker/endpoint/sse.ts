import { Transform, type TransformCallback } from 'node:stream';

/** Enough for any first event a server sends; past it the stream is passed on untouched. */
const MAX_FIRST_EVENT = 64 * 1024;

/**
 * Passes an event stream through, except for its FIRST event when that is the legacy
 * HTTP+SSE transport's `endpoint` event, whose data (the URL to POST to) is replaced by
 * `rewrite(data)`. Only the bytes up to the end of that first event are held back; after
 * it every chunk goes out as it comes. `rewrite` returning null ends the stream with an
 * error (the upstream named another origin; the token would follow the client there).
 */
export function endpointEventRewriter(rewrite: (data: string) => string | null): Transform {
  let buf = '';
  let passing = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (passing) return cb(null, chunk);
      buf += chunk.toString('utf8');
      // An event ends at an empty line (LF, CRLF or CR line ends).
      const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
      if (!m) {
        if (buf.length > MAX_FIRST_EVENT) {
          passing = true;
          const out = buf;
          buf = '';
          return cb(null, Buffer.from(out, 'utf8'));
        }
        return cb();
      }
      const end = m.index + m[0].length;
      const first = buf.slice(0, end);
      const rest = buf.slice(end);
      buf = '';
      passing = true;
      const rewritten = rewriteFirst(first, rewrite);
      if (rewritten === null) return cb(new Error('the upstream named a message endpoint on another origin'));
      cb(null, Buffer.from(rewritten + rest, 'utf8'));
    },
    flush(cb: TransformCallback) {
      cb(null, buf === '' ? undefined : Buffer.from(buf, 'utf8'));
    },
  });
}

/** Pure: the first event's text with an `endpoint` event's data rewritten (other events unchanged). */
export function rewriteFirst(event: string, rewrite: (data: string) => string | null): string | null {
  const lines = event.split(/\r\n|\n|\r/);
  let type = 'message';
  const data: string[] = [];
  for (const l of lines) {
    if (l.startsWith('event:')) type = l.slice(6).replace(/^ /, '');
    else if (l.startsWith('data:')) data.push(l.slice(5).replace(/^ /, ''));
  }
  if (type !== 'endpoint') return event;
  const url = rewrite(data.join('\n'));
  if (url === null) return null;
  const kept = lines.filter((l) => l !== '' && !l.startsWith('data:') && !l.startsWith('event:'));
  return ['event: endpoint', ...kept, `data: ${url}`].join('\n') + '\n\n';
}
