/**
 * HTTP/1.1 for the local endpoint, without I/O: the request head it writes upstream, and
 * incremental parsers of the answers it reads (upstream.ts) and of the requests it serves
 * (exchange.ts), both on one framing machine (RFC 9112).
 *
 * Why not node:http: every tool call passes here, and its per-request machinery (streams on
 * both sides, a parser object, an agent's queues, timers, events) was most of the daemon's CPU
 * per forwarded call (docs/benchmarks.md, "Fifth pass"). What this needs is narrow: one
 * message at a time per connection, GET/POST/DELETE, bodies framed by length, chunked or (an
 * answer) the connection's close, and a strict reading (a malformed message is an error,
 * never guessed at), since the daemon passes what it reads on, with a token added.
 *
 * A parser is a state machine fed buffers as they arrive; it calls its sink with the head,
 * the body's bytes (as slices of the input, not copies) and the end. It does not read ahead:
 * bytes past the end of a message are the next request's, or spoil an answer's connection.
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

export interface RequestHead {
  method: string;
  /** The request target as sent (origin-form "/path?query", or anything else, which the server refuses). */
  url: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  minor: 0 | 1;
  /** Lower-case names, as node:http gives them: repeated ones joined with ", ", singletons keep the first. */
  headers: Record<string, string>;
  /** The client wants the connection kept for another request. */
  keepAlive: boolean;
  /** `Expect: 100-continue`: the client waits for a 100 before sending its body. */
  expectContinue: boolean;
}

export interface RequestSink {
  head(head: RequestHead): void;
  data(chunk: Buffer): void;
  /** The request is complete; bytes after it (a pipelined request) are kept for `next()`. */
  end(): void;
}

export type ParseErrorCode =
  | 'HPE_HEADER_OVERFLOW'
  | 'HPE_INVALID_VERSION'
  | 'HPE_INVALID_STATUS'
  | 'HPE_INVALID_METHOD'
  | 'HPE_INVALID_URL'
  | 'HPE_INVALID_HEADER_TOKEN'
  | 'HPE_INVALID_CONTENT_LENGTH'
  | 'HPE_INVALID_CHUNK_SIZE'
  | 'HPE_INVALID_TRANSFER_ENCODING'
  | 'HPE_UNEXPECTED_CONTENT_LENGTH'
  | 'HPE_UNEXPECTED_UPGRADE'
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
/** RFC 9110 token characters: a header name, a method. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A character not allowed in a field value (VCHAR, obs-text, SP and HTAB are): CR, LF, NUL, other controls. */
export const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** A request line's start: a method (a token) and its space. */
const METHOD_SP = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ /;
const isOws = (c: number): boolean => c === 0x20 || c === 0x09;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP\/1\.([01])$/;
/** 1-13 hex digits (within Number's exact integers), optional whitespace, extensions without controls. */
const CHUNK_SIZE_LINE = /^([0-9a-fA-F]{1,13})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const CLOSE_LISTED = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
const KEEP_ALIVE_LISTED = /(?:^|,)[ \t]*keep-alive[ \t]*(?:,|$)/i;
/** Request headers of which node:http keeps the first when repeated (joining them would change their meaning). */
const SINGLETON = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/**
 * One HTTP/1.x message's framing: its head (left to the subclass), then a body framed by
 * length, chunked or (answers only) the connection's end. Feed it with `execute`; it throws
 * ParseError on a malformed message, after which the connection must be closed.
 */
abstract class MessageParser {
  protected state = State.Head;
  /** Head, chunk-size line or trailer bytes not yet complete. */
  #pending: Buffer | null = null;
  protected remaining = 0;
  /** Bytes after the end of the message. */
  protected rest: Buffer | null = null;

  get done(): boolean {
    return this.state === State.Done;
  }

  execute(input: Buffer): void {
    let buf = input;
    while (buf.length > 0) {
      switch (this.state) {
        case State.Head: {
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          // Search from where the previous piece ended (less 3: the blank line may straddle).
          const from = this.#pending ? Math.max(0, this.#pending.length - 3) : 0;
          const end = joined.indexOf(CRLFCRLF, from);
          if (end < 0 || end + 4 > MAX_HEAD_BYTES) {
            if (end >= 0 || joined.length > MAX_HEAD_BYTES) this.fail('HPE_HEADER_OVERFLOW', `the ${this.what}'s head is over ${MAX_HEAD_BYTES} bytes`);
            this.#checkLineEnds(joined, from);
            this.checkStart(joined);
            this.#pending = joined;
            return;
          }
          this.#pending = null;
          buf = joined.subarray(end + 4);
          if (this.applyHead(joined.toString('latin1', 0, end))) {
            // No body: complete, and what follows is the next message's.
            this.complete(buf);
            return;
          }
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length);
          this.remaining -= n;
          this.emitData(n === buf.length ? buf : buf.subarray(0, n));
          buf = buf.subarray(n);
          if (this.remaining === 0) this.complete(buf);
          return;
        }
        case State.ChunkSize: {
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          const eol = joined.indexOf(CRLF, this.#pending ? Math.max(0, this.#pending.length - 1) : 0);
          if (eol < 0 || eol > MAX_CHUNK_LINE) {
            if (eol >= 0 || joined.length > MAX_CHUNK_LINE) this.fail('HPE_INVALID_CHUNK_SIZE', 'a chunk-size line is too long');
            this.#pending = joined;
            return;
          }
          this.#pending = null;
          const m = CHUNK_SIZE_LINE.exec(joined.toString('latin1', 0, eol));
          if (!m) this.fail('HPE_INVALID_CHUNK_SIZE', 'a chunk size is not a hexadecimal number');
          const size = parseInt(m[1] as string, 16);
          buf = joined.subarray(eol + 2);
          if (size === 0) this.state = State.Trailers;
          else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length);
          this.remaining -= n;
          this.emitData(n === buf.length ? buf : buf.subarray(0, n));
          buf = buf.subarray(n);
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          // The CRLF after a chunk's data, possibly split across reads.
          while (this.remaining > 0 && buf.length > 0) {
            const want = this.remaining === 2 ? 0x0d : 0x0a;
            if (buf[0] !== want) this.fail('HPE_INVALID_CHUNK_SIZE', "a chunk's data is not followed by CRLF");
            this.remaining--;
            buf = buf.subarray(1);
          }
          if (this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Trailer fields are checked and dropped (never passed on); an empty line ends them.
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          if (joined.length >= 2 && joined[0] === 0x0d && joined[1] === 0x0a) {
            this.#pending = null;
            this.complete(joined.subarray(2));
            return;
          }
          const end = joined.indexOf(CRLFCRLF);
          if (end < 0 || end + 4 > MAX_HEAD_BYTES) {
            if (end >= 0 || joined.length > MAX_HEAD_BYTES) this.fail('HPE_HEADER_OVERFLOW', `the ${this.what}'s trailers are too long`);
            this.#pending = joined;
            return;
          }
          this.#pending = null;
          this.#checkTrailers(joined.toString('latin1', 0, end));
          this.complete(joined.subarray(end + 4));
          return;
        }
        case State.Close:
          this.emitData(buf);
          return;
        case State.Done:
          // More bytes after a complete message: kept (a pipelined request) or spoiling reuse (an answer).
          this.rest = this.rest ? Buffer.concat([this.rest, buf]) : buf;
          return;
        case State.Failed:
          return;
      }
    }
  }

  /**
   * A LF not after a CR in a head still incomplete: refused now rather than left waiting for a
   * CRLFCRLF that will never come (a complete head's lines are checked as they are split).
   */
  #checkLineEnds(head: Buffer, from: number): void {
    for (let i = head.indexOf(0x0a, from); i >= 0; i = head.indexOf(0x0a, i + 1)) {
      if (i > 0 && head[i - 1] === 0x0d) continue;
      // The same error the whole head would give: in the first line, that line's; else a header line's.
      const firstEol = head.indexOf(CRLF);
      if (firstEol < 0 || firstEol > i) this.badFirstLine(head.toString('latin1', 0, i));
      this.fail('HPE_INVALID_HEADER_TOKEN', `the ${this.what}'s head has a line ended by LF alone`);
    }
  }

  #checkTrailers(text: string): void {
    for (const line of text.split('\r\n')) if (line !== '') this.field(line, 'trailer');
  }

  protected abstract readonly what: string;
  /** Parses and applies a head; true when the message has no body. */
  protected abstract applyHead(text: string): boolean;
  /** A head still incomplete: refuse what can already be seen not to be HTTP/1.x. */
  protected abstract checkStart(head: Buffer): void;
  /** Throws what a first line that does not end where it should is refused with. */
  protected abstract badFirstLine(start: string): never;
  protected abstract emitData(chunk: Buffer): void;
  protected abstract complete(rest: Buffer): void;

  /**
   * One header or trailer line: the name is a token right before the colon (no space before
   * it, no obs-fold: RFC 9112 5.1); the value is what follows, without surrounding spaces and
   * tabs. Scanned by hand: a regex with a lazy group cost more than the rest of the head.
   */
  protected field(line: string, kind: 'header' | 'trailer'): [name: string, value: string] {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) this.fail('HPE_INVALID_HEADER_TOKEN', `the ${this.what} has an invalid ${kind} line`);
    let a = colon + 1;
    let b = line.length;
    while (a < b && isOws(line.charCodeAt(a))) a++;
    while (b > a && isOws(line.charCodeAt(b - 1))) b--;
    const value = a === colon + 1 && b === line.length ? line.slice(a) : line.slice(a, b);
    if (BAD_VALUE.test(value)) this.fail('HPE_INVALID_HEADER_TOKEN', `the ${this.what}'s "${name}" ${kind} holds a control character`);
    return [name, value];
  }

  /** Header lines into a record; `SINGLETON` names keep their first value. Returns the content length seen. */
  protected fields(lines: string[], headers: Record<string, string | string[]>, singletons: boolean): string | null {
    let length: string | null = null;
    for (let i = 1; i < lines.length; i++) {
      const [name, value] = this.field(lines[i] as string, 'header');
      const key = name.toLowerCase();
      if (key === 'content-length') {
        if (length !== null && length !== value) this.fail('HPE_INVALID_CONTENT_LENGTH', `the ${this.what} has two different content lengths`);
        length = value;
      }
      const prev = headers[key];
      // Two Hosts could be read two ways (which one did the access check see?): refused (RFC 9112 3.2).
      if (singletons && key === 'host' && prev !== undefined) this.fail('HPE_INVALID_HEADER_TOKEN', 'the request has two Host headers');
      if (prev === undefined) headers[key] = key === 'set-cookie' ? [value] : value;
      else if (key === 'set-cookie') (prev as string[]).push(value);
      else if (key === 'cookie' && singletons) headers[key] = `${prev as string}; ${value}`;
      else if (key !== 'content-length' && !(singletons && SINGLETON.has(key))) headers[key] = `${prev as string}, ${value}`;
    }
    return length;
  }

  /** Codings of a Transfer-Encoding value, lower-cased, empty list elements ignored (RFC 9110 5.6.1.2). */
  protected codings(te: string): string[] {
    return te
      .toLowerCase()
      .split(',')
      .map((c) => c.trim())
      .filter((c) => c !== '');
  }

  protected fail(code: ParseErrorCode, message: string): never {
    this.state = State.Failed;
    this.#pending = null;
    throw new ParseError(code, message);
  }
}

/**
 * Parses one answer to a request that is not HEAD (the endpoint never sends one). Feed it
 * with `execute`, tell it of the connection's end with `finish`; both throw ParseError on a
 * malformed answer, after which the connection must be closed.
 */
export class ResponseParser extends MessageParser {
  protected readonly what = 'answer';
  readonly #sink: ResponseSink;
  #reusable = false;

  constructor(sink: ResponseSink) {
    super();
    this.#sink = sink;
  }

  /** The connection ended (FIN): completes an answer framed by it, else the answer was cut. */
  finish(): void {
    if (this.state === State.Done || this.state === State.Failed) return;
    if (this.state === State.Close) {
      this.state = State.Done;
      this.#sink.end(false);
      return;
    }
    this.fail('HPE_TRUNCATED', this.state === State.Head ? 'the upstream closed the connection without an answer' : 'the upstream closed the connection before the answer ended');
  }

  protected checkStart(head: Buffer): void {
    const n = Math.min(head.length, 5);
    if (head.compare(HTTP_SLASH, 0, n, 0, n) !== 0) this.fail('HPE_INVALID_VERSION', 'the answer is not HTTP/1.x');
  }

  protected badFirstLine(start: string): never {
    if (!/^HTTP\/1\.[01] /.test(start)) this.fail('HPE_INVALID_VERSION', 'the answer is not HTTP/1.x');
    this.fail('HPE_INVALID_STATUS', 'the answer has an invalid status line');
  }

  protected applyHead(text: string): boolean {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0] as string);
    if (!m) this.badFirstLine(lines[0] as string);
    const status = Number(m[2]);
    if (status < 100) this.fail('HPE_INVALID_STATUS', 'the answer has an invalid status code');
    // No prototype: "constructor" and "__proto__" are valid header names.
    const headers = Object.create(null) as Record<string, string | string[]>;
    const length = this.fields(lines, headers, false);
    if (status < 200) {
      // Informational (100 Continue, 103 Early Hints): the real answer follows. The endpoint
      // never asks to switch protocols, so a 101 is not one it can pass on.
      if (status === 101) this.fail('HPE_UNEXPECTED_UPGRADE', 'the upstream switched protocols unasked');
      return false;
    }
    const version1 = m[1] === '1';
    const connection = headers['connection'];
    const close = !version1 || (typeof connection === 'string' && CLOSE_LISTED.test(connection));
    const te = headers['transfer-encoding'];
    let empty = false;
    if (status === 204 || status === 304) {
      this.#reusable = !close;
      empty = true;
    } else if (typeof te === 'string') {
      // Chunked must be the last coding; otherwise the body runs to the connection's end.
      const codings = this.codings(te);
      if (codings.slice(0, -1).includes('chunked')) this.fail('HPE_INVALID_TRANSFER_ENCODING', 'chunked is applied twice or not last');
      if (codings[codings.length - 1] === 'chunked') {
        // With a content length as well, the connection cannot be trusted afterwards (RFC 9112 6.3).
        this.#reusable = !close && length === null && version1;
        this.state = State.ChunkSize;
      } else this.state = State.Close;
    } else if (length !== null) {
      if (!/^\d{1,15}$/.test(length)) this.fail('HPE_INVALID_CONTENT_LENGTH', 'the answer has an invalid content length');
      this.remaining = Number(length);
      this.#reusable = !close;
      if (this.remaining === 0) empty = true;
      else this.state = State.Length;
    } else this.state = State.Close;
    // The head goes to the sink once the answer is known to be well framed.
    this.#sink.head({ status, headers });
    return empty;
  }

  protected emitData(chunk: Buffer): void {
    this.#sink.data(chunk);
  }

  protected complete(rest: Buffer): void {
    this.state = State.Done;
    this.#sink.end(this.#reusable && rest.length === 0);
  }
}

const HTTP_SLASH = Buffer.from('HTTP/');
/** No method is longer (the registered ones are at most 17 characters); a request line over 8 KiB is refused (node:http: 414 beyond ~8 KiB). */
const MAX_METHOD = 32;
const MAX_REQUEST_LINE = 8192;

/**
 * Parses requests on one connection, one at a time: after a request's end it keeps what
 * follows (a pipelined request) until `next()`. Strict where a lenient reading could let one
 * request be read two ways (RFC 9112 6.3, 11.2): a length and chunked together, two different
 * lengths, a coding other than chunked, a space before a colon, obs-fold, bare CR or LF.
 */
export class RequestParser extends MessageParser {
  protected readonly what = 'request';
  readonly #sink: RequestSink;

  constructor(sink: RequestSink) {
    super();
    this.#sink = sink;
  }

  /** Starts the next request with the bytes kept after the last one (fed back through `execute`). */
  next(): Buffer | null {
    const rest = this.rest;
    this.rest = null;
    this.state = State.Head;
    this.remaining = 0;
    return rest;
  }

  /** Bytes kept after the current request. */
  get pipelined(): number {
    return this.rest?.length ?? 0;
  }

  protected checkStart(head: Buffer): void {
    // A first line without its end in the first 8 KiB, or that cannot start a request line.
    const eol = head.indexOf(CRLF);
    if ((eol < 0 ? head.length : eol) > MAX_REQUEST_LINE) this.fail('HPE_INVALID_URL', 'the request line is too long');
    const sp = head.indexOf(0x20);
    if (sp === 0 || (sp < 0 ? head.length : sp) > MAX_METHOD || (sp > 0 && !TOKEN.test(head.toString('latin1', 0, sp)))) this.fail('HPE_INVALID_METHOD', 'the request has an invalid method');
  }

  protected badFirstLine(start: string): never {
    if (!METHOD_SP.test(start)) this.fail('HPE_INVALID_METHOD', 'the request has an invalid method');
    this.fail('HPE_INVALID_VERSION', 'the request is not HTTP/1.x');
  }

  protected applyHead(text: string): boolean {
    const lines = text.split('\r\n');
    const m = REQUEST_LINE.exec(lines[0] as string);
    if (!m) {
      const first = lines[0] as string;
      if (!METHOD_SP.test(first) || !/ HTTP\/1\.[01]$/.test(first)) this.badFirstLine(first);
      this.fail('HPE_INVALID_URL', 'the request target holds a space or a control character');
    }
    // The same limits as on an incomplete head (checkStart), however the bytes arrived.
    if ((m[1] as string).length > MAX_METHOD) this.fail('HPE_INVALID_METHOD', 'the request has an invalid method');
    if ((lines[0] as string).length > MAX_REQUEST_LINE) this.fail('HPE_INVALID_URL', 'the request line is too long');
    const headers = Object.create(null) as Record<string, string>;
    const length = this.fields(lines, headers as Record<string, string | string[]>, true);
    const minor = m[3] === '1' ? 1 : 0;
    const connection = headers['connection'] ?? '';
    // HTTP/1.0 keeps a connection only when asked, and never after a transfer coding (RFC 9112 6.1).
    const keepAlive = minor === 1 ? !CLOSE_LISTED.test(connection) : KEEP_ALIVE_LISTED.test(connection) && !CLOSE_LISTED.test(connection) && headers['transfer-encoding'] === undefined;
    const te = headers['transfer-encoding'];
    let empty = false;
    if (te !== undefined) {
      // Both: the classic request-smuggling shape; refused rather than guessed at.
      if (length !== null) this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 'the request has both a content length and a transfer coding');
      const codings = this.codings(te);
      if (codings.length !== 1 || codings[0] !== 'chunked') this.fail('HPE_INVALID_TRANSFER_ENCODING', 'the request uses a transfer coding other than chunked');
      this.state = State.ChunkSize;
    } else if (length !== null) {
      if (!/^\d{1,15}$/.test(length)) this.fail('HPE_INVALID_CONTENT_LENGTH', 'the request has an invalid content length');
      this.remaining = Number(length);
      if (this.remaining === 0) empty = true;
      else this.state = State.Length;
    } else empty = true;
    const expect = headers['expect'];
    // An HTTP/1.0 client cannot read a 100 (RFC 9110 10.1.1: its expectation is ignored).
    this.#sink.head({ method: m[1] as string, url: m[2] as string, minor, headers, keepAlive, expectContinue: !empty && minor === 1 && expect !== undefined && expect.toLowerCase() === '100-continue' });
    return empty;
  }

  protected emitData(chunk: Buffer): void {
    this.#sink.data(chunk);
  }

  protected complete(rest: Buffer): void {
    this.state = State.Done;
    this.rest = rest.length > 0 ? rest : null;
    this.#sink.end();
  }
}

/**
 * The request head: method, path, Host, the given headers and the body's length. Throws on a
 * value that would break the head (CR, LF, NUL: header injection), as node:http does.
 */
export function requestHead(method: string, path: string, host: string, headers: Record<string, string>, bodyLength: number | null): string {
  if (!TOKEN.test(method)) throw new TypeError('the request method is not a token');
  if (!/^[!-~]+$/.test(path)) throw new TypeError('the request path holds a space or a control character');
  if (!/^[!-~]+$/.test(host)) throw new TypeError('the request host holds a space or a control character');
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
