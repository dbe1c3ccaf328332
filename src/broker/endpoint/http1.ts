/**
 * HTTP/1.1 for the endpoint's upstream side, without I/O: the request head it writes and an
 * incremental parser of the answer (RFC 9112). upstream.ts drives them on a pooled socket.
 *
 * Why not node:http's client: every tool call passes here, and its ClientRequest, agent and
 * IncomingMessage (two streams, a parser object, timers, events) were a third of the daemon's
 * CPU per forwarded call (docs/benchmarks.md, "Fifth pass"). What this needs is narrow: one
 * request at a time per connection (no pipelining), GET/POST/DELETE, bodies framed by length,
 * chunked or connection close, and a strict reading of what comes back (a malformed answer
 * is an error, never guessed at), since the daemon passes the answer on to a client.
 *
 * The parser is a state machine fed buffers as they arrive; it calls its sink with the head,
 * the body's bytes (as slices of the input, not copies) and the end. It does not read ahead:
 * bytes past the end of the answer mean the connection cannot be reused.
 */

export interface ResponseHead {
  status: number;
  /** Lower-case names; repeated headers joined with ", " (set-cookie kept as a list), as node:http does. */
  headers: Record<string, string | string[]>;
}

export interface ResponseSink {
  head(head: ResponseHead): void;
  data(chunk: Buffer): void;
  /** The answer is complete; `reusable`: the connection may carry another request. */
  end(reusable: boolean): void;
}

export type ParseErrorCode =
  | 'HPE_HEADER_OVERFLOW'
  | 'HPE_INVALID_VERSION'
  | 'HPE_INVALID_STATUS'
  | 'HPE_INVALID_HEADER_TOKEN'
  | 'HPE_INVALID_CONTENT_LENGTH'
  | 'HPE_INVALID_CHUNK_SIZE'
  | 'HPE_INVALID_TRANSFER_ENCODING'
  | 'HPE_UNEXPECTED_UPGRADE'
  | 'HPE_UNEXPECTED_DATA'
  | 'HPE_TRUNCATED';

export class ParseError extends Error {
  readonly code: ParseErrorCode;
  constructor(code: ParseErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** node:http's default limit on a head (--max-http-header-size is 16 KiB); a chunk-size line gets far less. */
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_CHUNK_LINE = 4 * 1024;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Done,
  Failed,
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** RFC 9110 token characters: a header name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field value characters (VCHAR, obs-text, SP, HTAB): no CR, LF, NUL or other controls. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/s;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;

/**
 * Parses one answer to a request that is not HEAD (the endpoint never sends one). Feed it
 * with `execute`, tell it of the connection's end with `finish`; both throw ParseError on a
 * malformed answer, after which the connection must be closed.
 */
export class ResponseParser {
  #state = State.Head;
  #sink: ResponseSink;
  /** Head or chunk-size line bytes not yet complete. */
  #pending: Buffer | null = null;
  #remaining = 0;
  #reusable = false;

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  get done(): boolean {
    return this.#state === State.Done;
  }

  execute(input: Buffer): void {
    let buf = input;
    while (buf.length > 0) {
      switch (this.#state) {
        case State.Head: {
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          // Search from where the previous piece ended (less 3: the blank line may straddle).
          const from = this.#pending ? Math.max(0, this.#pending.length - 3) : 0;
          const end = joined.indexOf(CRLFCRLF, from);
          if (end < 0) {
            if (joined.length > MAX_HEAD_BYTES) this.#fail('HPE_HEADER_OVERFLOW', `the answer's head is over ${MAX_HEAD_BYTES} bytes`);
            this.#pending = joined;
            return;
          }
          if (end + 4 > MAX_HEAD_BYTES) this.#fail('HPE_HEADER_OVERFLOW', `the answer's head is over ${MAX_HEAD_BYTES} bytes`);
          this.#pending = null;
          buf = joined.subarray(end + 4);
          if (this.#head(joined.toString('latin1', 0, end))) {
            // No body (204, 304, a zero length): complete, and bytes after it spoil the connection.
            this.#complete(buf);
            return;
          }
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, buf.length);
          this.#remaining -= n;
          this.#sink.data(n === buf.length ? buf : buf.subarray(0, n));
          buf = buf.subarray(n);
          if (this.#remaining === 0) this.#complete(buf);
          return;
        }
        case State.ChunkSize: {
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          const eol = joined.indexOf(CRLF, this.#pending ? Math.max(0, this.#pending.length - 1) : 0);
          if (eol < 0) {
            if (joined.length > MAX_CHUNK_LINE) this.#fail('HPE_INVALID_CHUNK_SIZE', 'a chunk-size line is too long');
            this.#pending = joined;
            return;
          }
          this.#pending = null;
          const size = chunkSize(joined.toString('latin1', 0, eol));
          if (size === null) this.#fail('HPE_INVALID_CHUNK_SIZE', 'a chunk size is not a hexadecimal number');
          buf = joined.subarray(eol + 2);
          if (size === 0) this.#state = State.Trailers;
          else {
            this.#remaining = size;
            this.#state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, buf.length);
          this.#remaining -= n;
          this.#sink.data(n === buf.length ? buf : buf.subarray(0, n));
          buf = buf.subarray(n);
          if (this.#remaining === 0) {
            this.#state = State.ChunkDataEnd;
            this.#remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          // The CRLF after a chunk's data, possibly split across reads.
          while (this.#remaining > 0 && buf.length > 0) {
            const want = this.#remaining === 2 ? 0x0d : 0x0a;
            if (buf[0] !== want) this.#fail('HPE_INVALID_CHUNK_SIZE', "a chunk's data is not followed by CRLF");
            this.#remaining--;
            buf = buf.subarray(1);
          }
          if (this.#remaining === 0) this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Trailer fields are read and dropped (they are not passed on); an empty line ends them.
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          if (joined.length >= 2 && joined[0] === 0x0d && joined[1] === 0x0a) {
            this.#pending = null;
            this.#complete(joined.subarray(2));
            return;
          }
          const end = joined.indexOf(CRLFCRLF);
          if (end < 0) {
            if (joined.length > MAX_HEAD_BYTES) this.#fail('HPE_HEADER_OVERFLOW', "the answer's trailers are too long");
            this.#pending = joined;
            return;
          }
          this.#pending = null;
          this.#complete(joined.subarray(end + 4));
          return;
        }
        case State.Close:
          this.#sink.data(buf);
          return;
        case State.Done:
          // More bytes after a complete answer: the connection is out of step; not reused.
          return;
        case State.Failed:
          return;
      }
    }
  }

  /** The connection ended (FIN): completes an answer framed by it, else the answer was cut. */
  finish(): void {
    if (this.#state === State.Done || this.#state === State.Failed) return;
    if (this.#state === State.Close) {
      this.#state = State.Done;
      this.#sink.end(false);
      return;
    }
    this.#fail('HPE_TRUNCATED', this.#state === State.Head ? 'the upstream closed the connection without an answer' : 'the upstream closed the connection before the answer ended');
  }

  /** Applies a head; true when the answer has no body and is complete with it. */
  #head(text: string): boolean {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0] ?? '');
    if (!m) {
      if (!/^HTTP\/1\.[01] /.test(lines[0] ?? '')) this.#fail('HPE_INVALID_VERSION', 'the answer is not HTTP/1.x');
      this.#fail('HPE_INVALID_STATUS', 'the answer has an invalid status line');
    }
    const status = Number(m[2]);
    if (status < 100) this.#fail('HPE_INVALID_STATUS', 'the answer has an invalid status code');
    // No prototype: "constructor" and "__proto__" are valid header names.
    const headers = Object.create(null) as Record<string, string | string[]>;
    let length: string | null = null;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      // One match per line: a token name, the colon right after it (no space before it, no
      // obs-fold: RFC 9112 5.1), optional whitespace, then the value without its trailing whitespace.
      const f = FIELD_LINE.exec(line);
      if (!f) this.#fail('HPE_INVALID_HEADER_TOKEN', 'the answer has an invalid header line');
      const name = f[1] as string;
      const value = f[2] as string;
      if (BAD_VALUE.test(value)) this.#fail('HPE_INVALID_HEADER_TOKEN', `the answer's "${name}" header holds a control character`);
      const key = name.toLowerCase();
      if (key === 'content-length') {
        if (length !== null && length !== value) this.#fail('HPE_INVALID_CONTENT_LENGTH', 'the answer has two different content lengths');
        length = value;
      }
      const prev = headers[key];
      if (key === 'set-cookie') headers[key] = prev === undefined ? [value] : [...(prev as string[]), value];
      else if (prev === undefined) headers[key] = value;
      else if (key !== 'content-length') headers[key] = `${prev as string}, ${value}`;
    }
    if (status < 200) {
      // Informational (100 Continue, 103 Early Hints): the real answer follows. The endpoint
      // never asks to switch protocols, so a 101 is not one it can pass on.
      if (status === 101) this.#fail('HPE_UNEXPECTED_UPGRADE', 'the upstream switched protocols unasked');
      return false;
    }
    const version1 = m[1] === '1';
    const connection = typeof headers['connection'] === 'string' ? headers['connection'].toLowerCase() : '';
    const close = !version1 || /(?:^|,)\s*close\s*(?:,|$)/.test(connection);
    const te = headers['transfer-encoding'];
    let empty = false;
    if (status === 204 || status === 304) {
      this.#reusable = !close;
      empty = true;
    } else if (typeof te === 'string') {
      // Chunked must be the last coding; otherwise the body runs to the connection's end.
      const codings = te.toLowerCase().split(',').map((s) => s.trim());
      if (codings.slice(0, -1).includes('chunked')) this.#fail('HPE_INVALID_TRANSFER_ENCODING', 'chunked is applied twice or not last');
      if (codings[codings.length - 1] === 'chunked') {
        // With a content length as well, the connection cannot be trusted afterwards (RFC 9112 6.3).
        this.#reusable = !close && length === null && version1;
        this.#state = State.ChunkSize;
      } else this.#state = State.Close;
    } else if (length !== null) {
      if (!/^\d{1,15}$/.test(length)) this.#fail('HPE_INVALID_CONTENT_LENGTH', 'the answer has an invalid content length');
      this.#remaining = Number(length);
      this.#reusable = !close;
      if (this.#remaining === 0) empty = true;
      else this.#state = State.Length;
    } else this.#state = State.Close;
    // The head goes to the sink once the answer is known to be well framed.
    this.#sink.head({ status, headers });
    return empty;
  }

  #complete(rest: Buffer): void {
    this.#state = State.Done;
    this.#sink.end(this.#reusable && rest.length === 0);
  }

  #fail(code: ParseErrorCode, message: string): never {
    this.#state = State.Failed;
    this.#pending = null;
    throw new ParseError(code, message);
  }
}

/** A chunk-size line's size (extensions after ";" ignored), or null when it is not one. */
function chunkSize(line: string): number | null {
  const semi = line.indexOf(';');
  const hex = (semi < 0 ? line : line.slice(0, semi)).replace(/[ \t]+$/, '');
  // 13 hex digits stay within Number's exact integers.
  if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) return null;
  return parseInt(hex, 16);
}

/**
 * The request head: method, path, Host, the given headers and the body's length. Throws on a
 * value that would break the head (CR, LF, NUL: header injection), as node:http does.
 */
export function requestHead(method: string, path: string, host: string, headers: Record<string, string>, bodyLength: number | null): string {
  if (!/^[!-~]+$/.test(path)) throw new TypeError('the request path holds a space or a control character');
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n`;
  for (const name in headers) {
    const value = headers[name] as string;
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) throw new TypeError(`the request header "${name}" holds an invalid character`);
    head += `${name}: ${value}\r\n`;
  }
  if (bodyLength !== null) head += `content-length: ${bodyLength}\r\n`;
  return head + '\r\n';
}

/** The Host header for a target: the port only when it is not the scheme's default; IPv6 bracketed. */
export function hostHeader(hostname: string, port: number, https: boolean): string {
  const h = hostname.includes(':') ? `[${hostname}]` : hostname;
  return port === (https ? 443 : 80) ? h : `${h}:${port}`;
}

/** A `Keep-Alive: timeout=N` hint in milliseconds, or null. */
export function keepAliveHintMs(headers: Record<string, string | string[]>): number | null {
  const v = headers['keep-alive'];
  if (typeof v !== 'string') return null;
  const m = /(?:^|[,\s])timeout=(\d+)/i.exec(v);
  return m ? Number(m[1]) * 1000 : null;
}
