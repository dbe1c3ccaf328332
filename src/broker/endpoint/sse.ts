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

/** A response event bigger than this is not parsed (its call then counts until the stream ends or the cap). */
const MAX_WATCHED_EVENT = 4 * 1024 * 1024;

/**
 * Watches an event stream as it passes (bytes go out unchanged, as they come) and, while
 * `enabled()`, calls `onResponse` with the id of every JSON-RPC response in a `message`
 * event. Only the unfinished event is kept for parsing.
 */
export function responseWatcher(enabled: () => boolean, onResponse: (id: string) => void): Transform {
  let buf = '';
  let skipping = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!enabled()) return cb(null, chunk);
      // Only the tail can complete an event end ("\r\n\r\n" split across chunks).
      const from = Math.max(0, buf.length - 3);
      buf += chunk.toString('utf8');
      const { events, rest } = splitEvents(buf, from);
      for (const ev of events) {
        if (!skipping) for (const id of responseIds(ev)) onResponse(id);
        skipping = false;
      }
      buf = rest;
      if (buf.length > MAX_WATCHED_EVENT) {
        // Past the bound: the rest of this event is passed without parsing it.
        skipping = true;
        buf = buf.slice(-3);
      }
      cb(null, chunk);
    },
  });
}

/** Pure: the complete events in `text` (each without its blank line; ends searched from `from`) and what follows the last one. */
export function splitEvents(text: string, from = 0): { events: string[]; rest: string } {
  const events: string[] = [];
  const re = /\r\n\r\n|\n\n|\r\r/g;
  re.lastIndex = from;
  let start = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    events.push(text.slice(start, m.index));
    start = m.index + m[0].length;
  }
  return { events, rest: text.slice(start) };
}

/** Pure: the ids (JSON-encoded, so 1 and "1" differ) of the JSON-RPC responses one event carries. */
export function responseIds(event: string): string[] {
  let type = 'message';
  const data: string[] = [];
  for (const l of event.split(/\r\n|\n|\r/)) {
    if (l.startsWith('event:')) type = l.slice(6).replace(/^ /, '');
    else if (l.startsWith('data:')) data.push(l.slice(5).replace(/^ /, ''));
  }
  if (type !== 'message' || data.length === 0) return [];
  return messageIds(data.join('\n'), 'response');
}

/**
 * Pure: the ids of the JSON-RPC requests (`method` and `id`) or responses (`id`, no
 * `method`) in a message or batch; [] for anything that does not parse.
 */
export function messageIds(json: string, kind: 'request' | 'response'): string[] {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const m of Array.isArray(v) ? v : [v]) {
    if (typeof m !== 'object' || m === null) continue;
    const o = m as Record<string, unknown>;
    if (typeof o.id !== 'string' && typeof o.id !== 'number') continue;
    if ((kind === 'request') === (typeof o.method === 'string')) out.push(JSON.stringify(o.id));
  }
  return out;
}
