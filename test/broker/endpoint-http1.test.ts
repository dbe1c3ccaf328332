/**
 * http1.ts without a socket: the incremental HTTP/1.1 answer parser the endpoint reads every
 * upstream answer with (upstream.ts), and the request-head helpers. The parser is fed the same
 * bytes whole, split in two at every byte boundary and one byte at a time, since TCP may cut
 * an answer anywhere: what reaches the sink (head, body bytes, end and whether the connection
 * may be reused) must not depend on where. A malformed answer must be a ParseError with its
 * code and never an end (a connection out of step must not go back to the pool); a cut one is
 * HPE_TRUNCATED. Body bytes are slices of the input, not copies. requestHead must refuse what
 * would break the head it writes (header injection).
 */
import { describe, expect, it } from 'vitest';
import { feedings } from '../helpers/feedings.js';
import {
  hostHeader,
  keepAliveHintMs,
  MAX_HEAD_BYTES,
  ParseError,
  requestHead,
  ResponseParser,
  type ParseErrorCode,
  type ResponseHead,
} from '../../src/broker/endpoint/http1.js';

// ---------------------------------------------------------------------------------------------
// Harness

/** A fresh, unpooled buffer holding `text`'s bytes (latin1: one char per byte). */
function bytes(text: string): Buffer {
  const b = Buffer.alloc(text.length);
  b.write(text, 'latin1');
  return b;
}

/** A chunked-coding chunk of `data` (lower-case hex size). */
function chunk(data: string): string {
  return `${data.length.toString(16)}\r\n${data}\r\n`;
}

interface Run {
  heads: ResponseHead[];
  chunks: Buffer[];
  /** The body's bytes, latin1. */
  body: string;
  ends: boolean[];
  /** end() calls before finish() was called. */
  endsBeforeFinish: number;
  error: ParseError | null;
  parser: ResponseParser;
}

/** Feeds `pieces` in order (stopping at a ParseError), then finish() when asked. */
function run(pieces: Buffer[], opts: { finish?: boolean } = {}): Run {
  const heads: ResponseHead[] = [];
  const chunks: Buffer[] = [];
  const ends: boolean[] = [];
  let error: ParseError | null = null;
  let endsBeforeFinish = 0;
  const parser = new ResponseParser({
    // A copy into a plain object: toEqual compares values, and the parser's own object may be
    // null-prototyped.
    head: (h) => heads.push({ status: h.status, headers: { ...h.headers } }),
    data: (c) => chunks.push(c),
    end: (reusable) => ends.push(reusable),
  });
  try {
    for (const p of pieces) parser.execute(p);
    endsBeforeFinish = ends.length;
    if (opts.finish) parser.finish();
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    error = e;
    endsBeforeFinish = ends.length;
  }
  return { heads, chunks, body: Buffer.concat(chunks).toString('latin1'), ends, endsBeforeFinish, error, parser };
}

/** What a run delivered, for comparison across feedings. */
function outcome(r: Run): { heads: ResponseHead[]; body: string; ends: boolean[]; endsBeforeFinish: number; error: ParseErrorCode | null } {
  return { heads: r.heads, body: r.body, ends: r.ends, endsBeforeFinish: r.endsBeforeFinish, error: r.error?.code ?? null };
}

// ---------------------------------------------------------------------------------------------
// Well-formed answers

const SSE_EVENTS = ['event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n', ': keep-alive\n\n', 'id: 7\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'];

interface Good {
  raw: string;
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  reusable: boolean;
  /** The body runs to the connection's end: only finish() ends it. */
  closeDelimited?: boolean;
}

const GOOD: Array<[string, Good]> = [
  [
    'a content-length body (with CRLF and binary bytes inside it)',
    {
      raw: 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 12\r\n\r\nab\r\n\r\n\x00\xff\x80cde',
      status: 200,
      headers: { 'content-type': 'application/octet-stream', 'content-length': '12' },
      body: 'ab\r\n\r\n\x00\xff\x80cde',
      reusable: true,
    },
  ],
  [
    'a JSON answer with a content length',
    {
      raw: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s-1\r\nContent-Length: 38\r\n\r\n{"jsonrpc":"2.0","id":1,"result":{}}\r\n',
      status: 200,
      headers: { 'content-type': 'application/json', 'mcp-session-id': 's-1', 'content-length': '38' },
      body: '{"jsonrpc":"2.0","id":1,"result":{}}\r\n',
      reusable: true,
    },
  ],
  [
    'an error status with a body',
    {
      raw: 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="mcp"\r\nContent-Length: 5\r\n\r\nnope.',
      status: 401,
      headers: { 'www-authenticate': 'Bearer realm="mcp"', 'content-length': '5' },
      body: 'nope.',
      reusable: true,
    },
  ],
  [
    'content-length 0',
    { raw: 'HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n', status: 202, headers: { 'content-length': '0' }, body: '', reusable: true },
  ],
  [
    'content-length with leading zeros',
    { raw: 'HTTP/1.1 200 OK\r\nContent-Length: 003\r\n\r\nabc', status: 200, headers: { 'content-length': '003' }, body: 'abc', reusable: true },
  ],
  [
    'two equal content-lengths (one kept)',
    { raw: 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd', status: 200, headers: { 'content-length': '4' }, body: 'abcd', reusable: true },
  ],
  [
    '204 without a body',
    { raw: 'HTTP/1.1 204 No Content\r\nMcp-Session-Id: s-2\r\n\r\n', status: 204, headers: { 'mcp-session-id': 's-2' }, body: '', reusable: true },
  ],
  [
    '204 with a content length (it still has no body)',
    { raw: 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n', status: 204, headers: { 'content-length': '10' }, body: '', reusable: true },
  ],
  [
    '304 with a content length and transfer-encoding (no body)',
    {
      raw: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 120\r\nTransfer-Encoding: chunked\r\n\r\n',
      status: 304,
      headers: { etag: '"v1"', 'content-length': '120', 'transfer-encoding': 'chunked' },
      body: '',
      reusable: true,
    },
  ],
  [
    '204 with Connection: close',
    { raw: 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n', status: 204, headers: { connection: 'close' }, body: '', reusable: false },
  ],
  [
    'chunked, several chunks',
    {
      raw: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('hello')}${chunk(' ')}${chunk('world')}${chunk('!'.repeat(20))}0\r\n\r\n`,
      status: 200,
      headers: { 'transfer-encoding': 'chunked' },
      body: `hello world${'!'.repeat(20)}`,
      reusable: true,
    },
  ],
  [
    'chunked with chunk extensions (on data chunks and on the last one)',
    {
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6 ; name="q;x" \r\n world\r\n3;a;b=c\r\n!!!\r\n0;last=yes\r\n\r\n',
      status: 200,
      headers: { 'transfer-encoding': 'chunked' },
      body: 'hello world!!!',
      reusable: true,
    },
  ],
  [
    'chunked with upper- and lower-case hex sizes and a leading zero',
    {
      raw: `HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n${'a'.repeat(10)}\r\nb\r\n${'b'.repeat(11)}\r\n1F\r\n${'c'.repeat(31)}\r\n1f\r\n${'d'.repeat(31)}\r\n0010\r\n${'e'.repeat(16)}\r\n000\r\n\r\n`,
      status: 200,
      headers: { 'transfer-encoding': 'Chunked' },
      body: `${'a'.repeat(10)}${'b'.repeat(11)}${'c'.repeat(31)}${'d'.repeat(31)}${'e'.repeat(16)}`,
      reusable: true,
    },
  ],
  [
    'chunked with trailers (read and dropped)',
    {
      raw: `HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('data')}0\r\nX-Checksum: abc123\r\nX-Other: 1\r\n\r\n`,
      status: 200,
      headers: { trailer: 'X-Checksum', 'transfer-encoding': 'chunked' },
      body: 'data',
      reusable: true,
    },
  ],
  [
    'chunked data holding CRLFs and the bytes of a last chunk',
    {
      raw: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('0\r\n\r\n')}${chunk('\r\n')}0\r\n\r\n`,
      status: 200,
      headers: { 'transfer-encoding': 'chunked' },
      body: '0\r\n\r\n\r\n',
      reusable: true,
    },
  ],
  [
    'an SSE stream, chunked',
    {
      raw: `HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n${SSE_EVENTS.map(chunk).join('')}0\r\n\r\n`,
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'transfer-encoding': 'chunked' },
      body: SSE_EVENTS.join(''),
      reusable: true,
    },
  ],
  [
    'close-delimited (neither length nor transfer-encoding)',
    {
      raw: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this\r\n\r\nuntil the close',
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body: 'all of this\r\n\r\nuntil the close',
      reusable: false,
      closeDelimited: true,
    },
  ],
  [
    'close-delimited with an empty body and no headers',
    { raw: 'HTTP/1.1 200 OK\r\n\r\n', status: 200, headers: {}, body: '', reusable: false, closeDelimited: true },
  ],
  [
    'Connection: close with a content length',
    {
      raw: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      status: 200,
      headers: { connection: 'close', 'content-length': '2' },
      body: 'ok',
      reusable: false,
    },
  ],
  [
    'Connection: close among other options, in any case',
    {
      raw: 'HTTP/1.1 200 OK\r\nConnection: keep-alive,  CLOSE \r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      status: 200,
      headers: { connection: 'keep-alive,  CLOSE', 'transfer-encoding': 'chunked' },
      body: 'ok',
      reusable: false,
    },
  ],
  [
    'Connection: close in a second Connection header',
    {
      raw: 'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      status: 200,
      headers: { connection: 'keep-alive, close', 'content-length': '2' },
      body: 'ok',
      reusable: false,
    },
  ],
  [
    'a Connection option that only contains "close" keeps the connection',
    {
      raw: 'HTTP/1.1 200 OK\r\nConnection: keep-alive, x-closed\r\nContent-Length: 2\r\n\r\nok',
      status: 200,
      headers: { connection: 'keep-alive, x-closed', 'content-length': '2' },
      body: 'ok',
      reusable: true,
    },
  ],
  [
    'HTTP/1.0 with a content length',
    { raw: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', status: 200, headers: { 'content-length': '2' }, body: 'ok', reusable: false },
  ],
  [
    'HTTP/1.0 with Connection: keep-alive (still not reused)',
    {
      raw: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok',
      status: 200,
      headers: { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'content-length': '2' },
      body: 'ok',
      reusable: false,
    },
  ],
  [
    'HTTP/1.0 close-delimited',
    { raw: 'HTTP/1.0 404 Not Found\r\n\r\nmissing', status: 404, headers: {}, body: 'missing', reusable: false, closeDelimited: true },
  ],
  [
    '100 Continue before the answer (skipped)',
    {
      raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      status: 200,
      headers: { 'content-length': '2' },
      body: 'ok',
      reusable: true,
    },
  ],
  [
    '103 Early Hints with headers, then 100 Continue, before the answer (skipped, their headers too)',
    {
      raw: 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nLink: </x.js>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /r/1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      status: 201,
      headers: { location: '/r/1', 'transfer-encoding': 'chunked' },
      body: 'ok',
      reusable: true,
    },
  ],
  [
    'repeated headers joined with ", ", set-cookie kept as a list',
    {
      raw: 'HTTP/1.1 200 OK\r\nVary: Accept\r\nSet-Cookie: a=1; Path=/\r\nvary: Origin\r\nSET-COOKIE: b=2, c=3\r\nVARY: Mcp-Session-Id\r\nContent-Length: 0\r\n\r\n',
      status: 200,
      headers: { vary: 'Accept, Origin, Mcp-Session-Id', 'set-cookie': ['a=1; Path=/', 'b=2, c=3'], 'content-length': '0' },
      body: '',
      reusable: true,
    },
  ],
  [
    'a single set-cookie is a list of one',
    {
      raw: 'HTTP/1.1 200 OK\r\nSet-Cookie: only=1\r\nContent-Length: 0\r\n\r\n',
      status: 200,
      headers: { 'set-cookie': ['only=1'], 'content-length': '0' },
      body: '',
      reusable: true,
    },
  ],
  [
    'header names lower-cased, every token character allowed',
    {
      raw: "HTTP/1.1 200 OK\r\nX-Request-ID: r1\r\nCONTENT-TYPE: text/plain\r\nX-!#$%&'*+-.^_`|~09az: t\r\nContent-Length: 0\r\n\r\n",
      status: 200,
      headers: { 'x-request-id': 'r1', 'content-type': 'text/plain', "x-!#$%&'*+-.^_`|~09az": 't', 'content-length': '0' },
      body: '',
      reusable: true,
    },
  ],
  [
    'OWS around values trimmed (spaces and tabs), inner whitespace and colons kept, empty values kept',
    {
      raw: 'HTTP/1.1 200 OK\r\nX-A:   spaced  \t\r\nX-B:\ttabbed\t\r\nX-C:no-space\r\nX-D: a  b\tc\r\nX-E:\r\nX-F:  \r\nLocation: http://h:8080/a?b=c:d\r\nContent-Length: 0\r\n\r\n',
      status: 200,
      headers: { 'x-a': 'spaced', 'x-b': 'tabbed', 'x-c': 'no-space', 'x-d': 'a  b\tc', 'x-e': '', 'x-f': '', location: 'http://h:8080/a?b=c:d', 'content-length': '0' },
      body: '',
      reusable: true,
    },
  ],
  [
    'obs-text (bytes 0x80-0xff) in a value, read as latin1',
    {
      raw: 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9 \xff\r\nContent-Length: 0\r\n\r\n',
      status: 200,
      headers: { 'x-name': 'caf\xe9 \xff', 'content-length': '0' },
      body: '',
      reusable: true,
    },
  ],
  [
    'a status line without a reason phrase, with an empty one, and an unusual code',
    {
      raw: 'HTTP/1.1 599 \r\nContent-Length: 1\r\n\r\nx',
      status: 599,
      headers: { 'content-length': '1' },
      body: 'x',
      reusable: true,
    },
  ],
  [
    'a status line with no space after the code',
    { raw: 'HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx', status: 200, headers: { 'content-length': '1' }, body: 'x', reusable: true },
  ],
  [
    'transfer-encoding chunked with a content length too: chunked wins, not reusable',
    {
      raw: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      status: 200,
      headers: { 'content-length': '3', 'transfer-encoding': 'chunked' },
      body: 'hello',
      reusable: false,
    },
  ],
  [
    'transfer-encoding chunked with an invalid content length: chunked wins, not reusable',
    {
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: nope\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      status: 200,
      headers: { 'transfer-encoding': 'chunked', 'content-length': 'nope' },
      body: 'hello',
      reusable: false,
    },
  ],
  [
    'transfer-encoding gzip (chunked not last): close-delimited, the coded bytes passed as they are',
    {
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n',
      status: 200,
      headers: { 'transfer-encoding': 'gzip' },
      body: '\x1f\x8b\x08\x00\r\n0\r\n\r\n',
      reusable: false,
      closeDelimited: true,
    },
  ],
  [
    'transfer-encoding gzip with a content length: still close-delimited (RFC 9112 6.3)',
    {
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef',
      status: 200,
      headers: { 'transfer-encoding': 'gzip', 'content-length': '2' },
      body: 'abcdef',
      reusable: false,
      closeDelimited: true,
    },
  ],
  [
    'transfer-encoding gzip, chunked: the chunked coding is removed',
    {
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n',
      status: 200,
      headers: { 'transfer-encoding': 'gzip, chunked' },
      body: '\x1f\x8b\x08\x00',
      reusable: true,
    },
  ],
  [
    'transfer-encoding split over two headers, chunked last',
    {
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      status: 200,
      headers: { 'transfer-encoding': 'gzip, chunked' },
      body: 'ok',
      reusable: true,
    },
  ],
  [
    'HTTP/1.0 with transfer-encoding chunked: decoded, never reused (RFC 9112 6.1)',
    {
      raw: 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      status: 200,
      headers: { 'transfer-encoding': 'chunked' },
      body: 'ok',
      reusable: false,
    },
  ],
];

describe('ResponseParser: well-formed answers, whatever the feeding', () => {
  it.each(GOOD)('%s', (_name, c) => {
    const raw = bytes(c.raw);
    const want = {
      heads: [{ status: c.status, headers: c.headers }],
      body: c.body,
      ends: [c.reusable],
      // Framed answers end with their last byte (finish() afterwards is a no-op); a
      // close-delimited one only at finish().
      endsBeforeFinish: c.closeDelimited ? 0 : 1,
      error: null,
    };
    const all = feedings(raw);
    expect(all.length).toBe(raw.length + 1);
    for (const [how, pieces] of all) {
      const r = run(pieces, { finish: true });
      expect(outcome(r), how).toEqual(want);
      expect(r.parser.done, how).toBe(true);
      // The sink never gets an empty slice.
      expect(
        r.chunks.every((ch) => ch.length > 0),
        how,
      ).toBe(true);
    }
  });

  it('the head reaches the sink before any body byte, and the end after the last', () => {
    const calls: string[] = [];
    const p = new ResponseParser({
      head: (h) => calls.push(`head ${h.status}`),
      data: (c) => calls.push(`data ${c.toString('latin1')}`),
      end: (reusable) => calls.push(`end ${reusable}`),
    });
    p.execute(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n'));
    expect(p.done).toBe(false);
    p.execute(bytes('0\r\n\r\n'));
    expect(calls).toEqual(['head 200', 'data abc', 'data de', 'end true']);
    expect(p.done).toBe(true);
  });

  it('a close-delimited body is passed on as it arrives, before finish()', () => {
    const r = run([bytes('HTTP/1.1 200 OK\r\n\r\nfirst'), bytes(' second')]);
    expect(r.body).toBe('first second');
    expect(r.ends).toEqual([]);
    expect(r.parser.done).toBe(false);
  });

  it('headers are a null-prototype object: a "__proto__" header is a plain field', () => {
    let got: ResponseHead | null = null;
    const p = new ResponseParser({ head: (h) => (got = h), data: () => {}, end: () => {} });
    p.execute(bytes('HTTP/1.1 200 OK\r\n__proto__: x\r\nconstructor: y\r\nContent-Length: 0\r\n\r\n'));
    const h = (got as ResponseHead | null)?.headers;
    expect(h && Object.getPrototypeOf(h)).toBe(null);
    expect(h?.['__proto__']).toBe('x');
    expect(h?.['constructor']).toBe('y');
  });
});

// ---------------------------------------------------------------------------------------------
// Bytes past the end of an answer

/**
 * The parser does not read ahead: bytes after a complete answer that arrive in the same read
 * as its end make it not reusable. Bytes in a later read are ignored (no data, no second end):
 * upstream.ts closes a pooled connection that receives anything.
 */
const TRAILING: Array<[string, string, string, number, Record<string, string>, string]> = [
  ['204 followed by bytes', 'HTTP/1.1 204 No Content\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n', 204, {}, ''],
  ['304 followed by bytes', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n', 'body?????', 304, { 'content-length': '9' }, ''],
  ['content-length 0 followed by bytes', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'x', 200, { 'content-length': '0' }, ''],
  ['a content-length body followed by bytes', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', 'def', 200, { 'content-length': '3' }, 'abc'],
  ['a chunked body followed by bytes', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', '\r\n', 200, { 'transfer-encoding': 'chunked' }, 'abc'],
  ['a chunked body with trailers followed by bytes', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n', 'junk', 200, { 'transfer-encoding': 'chunked' }, 'abc'],
];

describe('ResponseParser: bytes after a complete answer', () => {
  it.each(TRAILING)('%s', (_name, answer, extra, status, headers, body) => {
    const raw = bytes(answer + extra);
    for (const [how, pieces] of feedings(raw)) {
      const r = run(pieces);
      // Only when the answer's last byte ends a read (split exactly there, or byte by byte)
      // is the connection seen as reusable.
      const reusable = how === 'byte by byte' || how === `split at ${answer.length}`;
      expect(outcome(r), how).toEqual({ heads: [{ status, headers }], body, ends: [reusable], endsBeforeFinish: 1, error: null });
      expect(r.parser.done, how).toBe(true);
    }
  });

  it('more reads after the end change nothing (no data, no second end, no error)', () => {
    const r = run([bytes('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), bytes('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno'), bytes('garbage\x00')], { finish: true });
    expect(outcome(r)).toEqual({ heads: [{ status: 200, headers: { 'content-length': '2' } }], body: 'ok', ends: [true], endsBeforeFinish: 1, error: null });
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed answers

const HEAD_OK = 'HTTP/1.1 200 OK\r\n';
const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';

/** [name, raw, code, whether the head reached the sink before the error] */
const BAD: Array<[string, string, ParseErrorCode, boolean]> = [
  // Not HTTP/1.x at all.
  ['an SSH banner', 'SSH-2.0-OpenSSH_9.6\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['HTTP/2 status line', 'HTTP/2 200\r\ncontent-length: 0\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['HTTP/2.0 status line', 'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['HTTP/1.2', 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['a lower-case protocol name (case-sensitive, RFC 9112 2.3)', 'http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['a request line instead of a status line', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['an empty line first', '\r\n\r\n', 'HPE_INVALID_VERSION', false],
  ['leading whitespace before the status line', ' HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_VERSION', false],
  // A bad status code.
  ['a four-digit status code', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['a non-numeric status code', 'HTTP/1.1 abc\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['a two-digit status code', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['a status code under 100', 'HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['no space between code and reason', 'HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['two spaces before the code', 'HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['a missing status code', 'HTTP/1.1 \r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['a bare LF in the status line', 'HTTP/1.1 200 O\nK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  ['a bare CR in the status line', 'HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS', false],
  // Header lines.
  ['an obs-fold line (starts with a space)', `${HEAD_OK}X-A: 1\r\n continued\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['an obs-fold line (starts with a tab)', `${HEAD_OK}X-A: 1\r\n\tcontinued: 2\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a space before the colon', `${HEAD_OK}Content-Length : 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a tab before the colon', `${HEAD_OK}Content-Length\t: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['an empty header name', `${HEAD_OK}: value\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a header line without a colon', `${HEAD_OK}NoColonHere\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a space inside a header name', `${HEAD_OK}X A: 1\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a separator inside a header name', `${HEAD_OK}X(A): 1\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a non-ASCII header name', `${HEAD_OK}X-\xe9: 1\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a NUL in a value', `${HEAD_OK}X-A: a\x00b\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a DEL in a value', `${HEAD_OK}X-A: a\x7fb\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a C0 control in a value', `${HEAD_OK}X-A: a\x01b\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['an ESC in a value', `${HEAD_OK}X-A: \x1b[31mred\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a bare CR inside a value', `${HEAD_OK}X-A: a\rb\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a bare CR ending a value', `${HEAD_OK}X-A: a\r\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a bare LF inside a value (smuggled header line)', `${HEAD_OK}X-A: a\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  ['a bare LF line ending', `${HEAD_OK}X-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN', false],
  // Content-Length.
  ['two different content-lengths', `${HEAD_OK}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['two content-lengths differing only in spelling', `${HEAD_OK}Content-Length: 5\r\nContent-Length: 05\r\n\r\nhello`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['two different content-lengths with chunked', `${HEAD_OK}Transfer-Encoding: chunked\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n0\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a non-numeric content-length', `${HEAD_OK}Content-Length: abc\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a negative content-length', `${HEAD_OK}Content-Length: -1\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a signed content-length', `${HEAD_OK}Content-Length: +5\r\n\r\nhello`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a hex content-length', `${HEAD_OK}Content-Length: 0x10\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['an exponent content-length', `${HEAD_OK}Content-Length: 1e3\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a fractional content-length', `${HEAD_OK}Content-Length: 1.5\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['an empty content-length', `${HEAD_OK}Content-Length:\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a content-length list in one field', `${HEAD_OK}Content-Length: 5, 5\r\n\r\nhello`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a huge content-length (16 digits)', `${HEAD_OK}Content-Length: 1234567890123456\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  ['a huge content-length (40 digits)', `${HEAD_OK}Content-Length: ${'9'.repeat(40)}\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH', false],
  // Transfer-Encoding.
  ['chunked not last', `${HEAD_OK}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 'HPE_INVALID_TRANSFER_ENCODING', false],
  ['chunked not last, in capitals', `${HEAD_OK}Transfer-Encoding: CHUNKED , gzip\r\n\r\n0\r\n\r\n`, 'HPE_INVALID_TRANSFER_ENCODING', false],
  ['chunked twice in one header', `${HEAD_OK}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 'HPE_INVALID_TRANSFER_ENCODING', false],
  ['chunked twice in two headers', `${HEAD_OK}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'HPE_INVALID_TRANSFER_ENCODING', false],
  ['chunked first of two headers', `${HEAD_OK}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`, 'HPE_INVALID_TRANSFER_ENCODING', false],
  // Upgrade.
  ['101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 'HPE_UNEXPECTED_UPGRADE', false],
  ['101 after a 100 Continue', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n', 'HPE_UNEXPECTED_UPGRADE', false],
  ['a bad header in an informational answer', 'HTTP/1.1 103 Early Hints\r\nLink : </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN', false],
  // Chunk framing (the head was good and has been passed on).
  ['chunk size "zz"', `${CHUNKED}zz\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['an empty chunk-size line', `${CHUNKED}\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a chunk size of 14 hex digits', `${CHUNKED}10000000000000\r\nx\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a chunk size of 14 hex digits of zeros', `${CHUNKED}00000000000000\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a "0x" chunk size', `${CHUNKED}0x5\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a negative chunk size', `${CHUNKED}-1\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['whitespace before a chunk size', `${CHUNKED} 5\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['an extension without a size', `${CHUNKED};ext=1\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a bad size on a later chunk', `${CHUNKED}5\r\nhello\r\ng\r\nx\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['chunk data longer than its size (no CRLF after it)', `${CHUNKED}5\r\nhelloX\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['chunk data shorter than its size', `${CHUNKED}6\r\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a bare LF after chunk data', `${CHUNKED}5\r\nhello\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a CR not followed by LF after chunk data', `${CHUNKED}5\r\nhello\rX0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
  ['a bare LF ending a chunk-size line', `${CHUNKED}5\nhello\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE', true],
];

describe('ResponseParser: malformed answers, whatever the feeding', () => {
  it.each(BAD.map(([name, text, code, headSeen]) => [name, code, text, headSeen] as const))('%s -> %s', (_name, code, text, headSeen) => {
    const raw = bytes(text);
    for (const [how, pieces] of feedings(raw)) {
      const r = run(pieces, { finish: true });
      expect(r.error, how).toBeInstanceOf(ParseError);
      expect(r.error?.code, how).toBe(code);
      expect(r.ends, how).toEqual([]);
      expect(r.heads.length, how).toBe(headSeen ? 1 : 0);
      expect(r.parser.done, how).toBe(false);
    }
  });

  it('a ParseError is an Error with a message and the code', () => {
    const r = run([bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n')]);
    expect(r.error).toBeInstanceOf(Error);
    expect(r.error?.code).toBe('HPE_INVALID_CONTENT_LENGTH');
    expect(r.error?.message).toBe('the answer has two different content lengths');
  });

  it('after an error, more bytes and finish() do nothing', () => {
    const calls: string[] = [];
    const p = new ResponseParser({ head: () => calls.push('head'), data: () => calls.push('data'), end: () => calls.push('end') });
    p.execute(bytes(CHUNKED));
    expect(() => p.execute(bytes('zz\r\n'))).toThrow(ParseError);
    expect(() => p.execute(bytes('5\r\nhello\r\n0\r\n\r\n'))).not.toThrow();
    expect(() => p.finish()).not.toThrow();
    expect(calls).toEqual(['head']);
    expect(p.done).toBe(false);
  });
});

describe('ResponseParser: size limits', () => {
  /** A head of exactly `total` bytes (blank line included) with a zero content length. */
  function headOf(total: number): string {
    const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ';
    const text = `${start}${'a'.repeat(total - start.length - 4)}\r\n\r\n`;
    expect(text.length).toBe(total);
    return text;
  }

  it('MAX_HEAD_BYTES is 16 KiB', () => expect(MAX_HEAD_BYTES).toBe(16_384));

  it.each([
    ['without a blank line', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}`],
    ['with a blank line', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`],
    ['with a blank line and a body after it', `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\nok`],
    ['made of many short header lines', `HTTP/1.1 200 OK\r\n${'X-A: b\r\n'.repeat(2100)}\r\n`],
  ])('a head over MAX_HEAD_BYTES %s -> HPE_HEADER_OVERFLOW', (_name, text) => {
    for (const [how, pieces] of feedings(bytes(text))) {
      const r = run(pieces, { finish: true });
      expect(r.error?.code, how).toBe('HPE_HEADER_OVERFLOW');
      expect(r.heads, how).toEqual([]);
      expect(r.ends, how).toEqual([]);
    }
  });

  it('a head of exactly MAX_HEAD_BYTES is read, one byte more is refused', () => {
    for (const [how, pieces] of feedings(bytes(headOf(MAX_HEAD_BYTES)))) {
      const r = run(pieces);
      expect(r.error, how).toBe(null);
      expect(r.ends, how).toEqual([true]);
      expect(r.heads[0]?.headers['x-pad'], how).toBe('a'.repeat(MAX_HEAD_BYTES - 4 - 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: '.length));
    }
    for (const [how, pieces] of feedings(bytes(headOf(MAX_HEAD_BYTES + 1)))) {
      expect(run(pieces).error?.code, how).toBe('HPE_HEADER_OVERFLOW');
    }
  });

  it('the limit is per head: an informational head and the answer may each come close to it', () => {
    const info = `HTTP/1.1 103 Early Hints\r\nLink: ${'l'.repeat(MAX_HEAD_BYTES - 100)}\r\n\r\n`;
    const raw = bytes(info + headOf(MAX_HEAD_BYTES));
    for (const [how, pieces] of feedings(raw)) {
      const r = run(pieces);
      expect(r.error, how).toBe(null);
      expect(r.heads.map((h) => h.status), how).toEqual([200]);
      expect(r.ends, how).toEqual([true]);
    }
  });

  it('a chunk-size line over 4 KiB (no CRLF yet) -> HPE_INVALID_CHUNK_SIZE', () => {
    for (const [how, pieces] of feedings(bytes(`${CHUNKED}5;${'e'.repeat(5000)}`))) {
      const r = run(pieces, { finish: true });
      expect(r.error?.code, how).toBe('HPE_INVALID_CHUNK_SIZE');
      expect(r.heads.length, how).toBe(1);
      expect(r.ends, how).toEqual([]);
    }
  });

  it('a long chunk extension under 4 KiB is fine', () => {
    for (const [how, pieces] of feedings(bytes(`${CHUNKED}5;x=${'e'.repeat(4000)}\r\nhello\r\n0\r\n\r\n`))) {
      const r = run(pieces);
      expect(r.error, how).toBe(null);
      expect(r.body, how).toBe('hello');
      expect(r.ends, how).toEqual([true]);
    }
  });

  // The limit holds however the bytes arrive: with its CRLF in the same read as well.
  it('a chunk-size line over 4 KiB is refused even when its CRLF arrives in the same read', () => {
    for (const [how, pieces] of feedings(bytes(`${CHUNKED}5;${'e'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`))) {
      const r = run(pieces, { finish: true });
      expect(r.error?.code, how).toBe('HPE_INVALID_CHUNK_SIZE');
    }
  });

  it('trailers over MAX_HEAD_BYTES without their end -> HPE_HEADER_OVERFLOW', () => {
    for (const [how, pieces] of feedings(bytes(`${CHUNKED}0\r\nX-T: ${'t'.repeat(MAX_HEAD_BYTES)}`))) {
      const r = run(pieces, { finish: true });
      expect(r.error?.code, how).toBe('HPE_HEADER_OVERFLOW');
      expect(r.ends, how).toEqual([]);
    }
  });

  // Likewise for trailers arriving in one read with their blank line.
  it('trailers over MAX_HEAD_BYTES are refused even when they arrive in one read', () => {
    for (const [how, pieces] of feedings(bytes(`${CHUNKED}0\r\nX-T: ${'t'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`))) {
      expect(run(pieces, { finish: true }).error?.code, how).toBe('HPE_HEADER_OVERFLOW');
    }
  });
});

describe('ResponseParser: strictness (RFC 9112) beyond the framing', () => {
  // RFC 9112 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); it is not passed on, but a
  // control character there says the answer is not what it claims.
  it('a control character in the reason phrase -> HPE_INVALID_STATUS', () => {
    const r = run([bytes('HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n')]);
    expect(r.error?.code).toBe('HPE_INVALID_STATUS');
  });

  // RFC 9112 7.1.2: trailer-section = *( field-line CRLF ), the grammar of header lines; they
  // are dropped, but a malformed one is an error like a malformed header.
  it('a malformed trailer line -> HPE_INVALID_HEADER_TOKEN', () => {
    const r = run([bytes(`${CHUNKED}0\r\nno colon\x00 here\r\n\r\n`)]);
    expect(r.error?.code).toBe('HPE_INVALID_HEADER_TOKEN');
    expect(r.ends).toEqual([]);
  });

  // RFC 9110 5.6.1.2: a recipient accepts and ignores empty list elements, so "chunked," names
  // the chunked coding last.
  it('transfer-encoding "chunked," (an empty list element) is chunked', () => {
    const r = run([bytes(`${HEAD_OK}Transfer-Encoding: chunked,\r\n\r\n2\r\nok\r\n0\r\n\r\n`)]);
    expect(r.error).toBe(null);
    expect(r.body).toBe('ok');
    expect(r.ends).toEqual([true]);
  });
});

// ---------------------------------------------------------------------------------------------
// finish()

describe('ResponseParser.finish', () => {
  it.each([
    ['before any byte', '', 0, ''],
    ['mid status line', 'HTTP/1.1 20', 0, ''],
    ['mid head', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n', 0, ''],
    ['mid blank line', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r', 0, ''],
    ['after a 100 Continue only', 'HTTP/1.1 100 Continue\r\n\r\n', 0, ''],
    ['before a length body', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 1, ''],
    ['mid length body', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel', 1, 'hel'],
    ['before the first chunk', CHUNKED, 1, ''],
    ['mid chunk-size line', `${CHUNKED}5;ext`, 1, ''],
    ['mid chunk data', `${CHUNKED}5\r\nhe`, 1, 'he'],
    ['between chunk data and its CRLF', `${CHUNKED}5\r\nhello\r`, 1, 'hello'],
    ['after a chunk, before the next size', `${CHUNKED}5\r\nhello\r\n`, 1, 'hello'],
    ['after the last chunk, before the blank line', `${CHUNKED}5\r\nhello\r\n0\r\n`, 1, 'hello'],
    ['mid trailers', `${CHUNKED}5\r\nhello\r\n0\r\nX-T: 1\r\n`, 1, 'hello'],
  ])('%s -> HPE_TRUNCATED', (_name, text, heads, body) => {
    const feeds = text === '' ? ([['nothing', []]] as Array<[string, Buffer[]]>) : feedings(bytes(text));
    for (const [how, pieces] of feeds) {
      const r = run(pieces, { finish: true });
      expect(r.error, how).toBeInstanceOf(ParseError);
      expect(r.error?.code, how).toBe('HPE_TRUNCATED');
      expect(r.heads.length, how).toBe(heads);
      expect(r.body, how).toBe(body);
      expect(r.ends, how).toEqual([]);
      expect(r.parser.done, how).toBe(false);
      // A second finish() after the error is a no-op.
      expect(() => r.parser.finish(), how).not.toThrow();
    }
  });

  it('a bare SSH banner (no blank line yet) is refused at its first bytes, not left to finish()', () => {
    for (const [how, pieces] of feedings(bytes('SSH-2.0-OpenSSH_9.6\r\n'))) {
      const r = run(pieces);
      expect(r.error?.code, how).toBe('HPE_INVALID_VERSION');
      expect(r.heads.length, how).toBe(0);
    }
  });

  it('the truncation messages tell "no answer" from "cut answer"', () => {
    expect(run([], { finish: true }).error?.message).toBe('the upstream closed the connection without an answer');
    expect(run([bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab')], { finish: true }).error?.message).toBe('the upstream closed the connection before the answer ended');
  });

  it.each([
    ['a length body', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', true],
    ['a chunked body', `${CHUNKED}2\r\nok\r\n0\r\n\r\n`, true],
    ['a 204', 'HTTP/1.1 204 No Content\r\n\r\n', true],
    ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', false],
  ])('after the end of %s: a no-op (no error, no second end)', (_name, text, reusable) => {
    const calls: string[] = [];
    const p = new ResponseParser({ head: () => calls.push('head'), data: () => calls.push('data'), end: (r) => calls.push(`end ${r}`) });
    p.execute(bytes(text));
    expect(p.done).toBe(true);
    expect(() => p.finish()).not.toThrow();
    expect(() => p.finish()).not.toThrow();
    expect(calls.filter((c) => c.startsWith('end'))).toEqual([`end ${reusable}`]);
    expect(p.done).toBe(true);
  });

  it('a close-delimited answer ends at finish(), with end(false), once', () => {
    const calls: string[] = [];
    const p = new ResponseParser({ head: (h) => calls.push(`head ${h.status}`), data: (c) => calls.push(`data ${c.toString('latin1')}`), end: (r) => calls.push(`end ${r}`) });
    p.execute(bytes('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc'));
    p.execute(bytes('def'));
    expect(p.done).toBe(false);
    expect(calls).toEqual(['head 200', 'data abc', 'data def']);
    p.finish();
    expect(p.done).toBe(true);
    p.finish();
    p.execute(bytes('late'));
    expect(calls).toEqual(['head 200', 'data abc', 'data def', 'end false']);
  });
});

// ---------------------------------------------------------------------------------------------
// Body bytes are slices of the input

describe('ResponseParser: body bytes are not copied', () => {
  it('a length body fed whole is a view of the input buffer, at the body offset', () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
    // Buffer.alloc is never pooled: a copy could not share its ArrayBuffer by chance.
    const input = bytes(`${head}hello`);
    const r = run([input]);
    expect(r.chunks.length).toBe(1);
    const c = r.chunks[0] as Buffer;
    expect(c.buffer).toBe(input.buffer);
    expect(c.byteOffset).toBe(input.byteOffset + head.length);
    expect(c.length).toBe(5);
    // Same memory: a write to the input shows in the slice.
    input[head.length] = 0x48;
    expect(c.toString('latin1')).toBe('Hello');
  });

  it('a length body stopping short of the input (extra bytes) is still a view', () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n';
    const input = bytes(`${head}abcXYZ`);
    const r = run([input]);
    const c = r.chunks[0] as Buffer;
    expect(r.chunks.length).toBe(1);
    expect(c.buffer).toBe(input.buffer);
    expect(c.byteOffset).toBe(input.byteOffset + head.length);
    expect(c.toString('latin1')).toBe('abc');
    expect(r.ends).toEqual([false]);
  });

  it('a body in a later read is passed as that very buffer', () => {
    const second = bytes('hello');
    const r = run([bytes('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'), second, bytes('world')]);
    expect(r.chunks[0]).toBe(second);
    expect(r.body).toBe('helloworld');
  });

  it('chunked data fed whole are views of the input, at each chunk offset', () => {
    const input = bytes(`${CHUNKED}3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n`);
    const r = run([input]);
    expect(r.chunks.map((c) => c.toString('latin1'))).toEqual(['abc', 'defg']);
    expect(r.chunks.map((c) => c.buffer === input.buffer)).toEqual([true, true]);
    expect(r.chunks.map((c) => c.byteOffset - input.byteOffset)).toEqual([CHUNKED.length + 3, CHUNKED.length + 3 + 3 + 2 + 7]);
  });

  it('a close-delimited body read is passed as that very buffer', () => {
    const later = bytes('stream');
    const r = run([bytes('HTTP/1.1 200 OK\r\n\r\n'), later], { finish: true });
    expect(r.chunks).toEqual([later]);
    expect(r.chunks[0]).toBe(later);
  });
});

// ---------------------------------------------------------------------------------------------
// requestHead, hostHeader, keepAliveHintMs

describe('requestHead', () => {
  it('a POST with a body length', () => {
    expect(requestHead('POST', '/mcp?tenant=a&x=1', 'mcp.example.com:8443', { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 's-1' }, 42)).toBe(
      'POST /mcp?tenant=a&x=1 HTTP/1.1\r\n' +
        'host: mcp.example.com:8443\r\n' +
        'connection: keep-alive\r\n' +
        'content-type: application/json\r\n' +
        'accept: application/json, text/event-stream\r\n' +
        'mcp-session-id: s-1\r\n' +
        'content-length: 42\r\n' +
        '\r\n',
    );
  });

  it('a GET without a body: no content-length', () => {
    expect(requestHead('GET', '/sse', 'localhost', { accept: 'text/event-stream' }, null)).toBe('GET /sse HTTP/1.1\r\nhost: localhost\r\nconnection: keep-alive\r\naccept: text/event-stream\r\n\r\n');
  });

  it('no headers at all', () => {
    expect(requestHead('DELETE', '/mcp', '[::1]:3000', {}, null)).toBe('DELETE /mcp HTTP/1.1\r\nhost: [::1]:3000\r\nconnection: keep-alive\r\n\r\n');
  });

  it('an empty body still has a length', () => {
    expect(requestHead('POST', '/', 'h', {}, 0)).toBe('POST / HTTP/1.1\r\nhost: h\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n');
  });

  it('values keep tabs, inner spaces, obs-text and an empty value', () => {
    expect(requestHead('GET', '/', 'h', { 'x-a': 'a\tb  c', 'x-b': 'caf\xe9', 'x-c': '' }, null)).toBe('GET / HTTP/1.1\r\nhost: h\r\nconnection: keep-alive\r\nx-a: a\tb  c\r\nx-b: caf\xe9\r\nx-c: \r\n\r\n');
  });

  it('every line of the head ends with CRLF, and there is no other CR or LF', () => {
    const head = requestHead('POST', '/a', 'h:1', { 'x-y': 'z' }, 3);
    expect(head.endsWith('\r\n\r\n')).toBe(true);
    expect(head.split('\r\n')).toEqual(['POST /a HTTP/1.1', 'host: h:1', 'connection: keep-alive', 'x-y: z', 'content-length: 3', '', '']);
    expect(/[\r\n]/.test(head.replace(/\r\n/g, ''))).toBe(false);
  });

  it.each([
    ['CR in a value', { 'x-a': 'a\rb' }],
    ['LF in a value', { 'x-a': 'a\nb' }],
    ['CRLF injection in a value', { 'x-a': 'ok\r\nx-injected: 1' }],
    ['NUL in a value', { 'x-a': 'a\x00b' }],
    ['DEL in a value', { 'x-a': 'a\x7f' }],
    ['another control in a value', { 'x-a': 'a\x1bb' }],
    ['a character past latin1 in a value', { 'x-a': 'snow\u2603' }],
    ['CR in a name', { 'x-a\r': 'v' }],
    ['LF in a name', { 'x-a\n': 'v' }],
    ['CRLF injection in a name', { 'x-injected: 1\r\nx-a': 'v' }],
    ['NUL in a name', { 'x-\x00a': 'v' }],
    ['an empty name', { '': 'v' }],
    ['a space in a name', { 'x a': 'v' }],
    ['a colon in a name', { 'x-a:': 'v' }],
    ['a separator in a name', { 'x(a)': 'v' }],
    ['a non-ASCII name', { 'x-\xe9': 'v' }],
  ])('throws TypeError for %s', (_name, headers) => {
    expect(() => requestHead('POST', '/mcp', 'h', headers, 1)).toThrow(TypeError);
    expect(() => requestHead('POST', '/mcp', 'h', headers, 1)).toThrow(/the request header ".*" holds an invalid character/s);
  });

  it('a bad header after good ones still throws (nothing is half-written)', () => {
    expect(() => requestHead('GET', '/', 'h', { 'x-ok': '1', 'x-bad': '\r\n' }, null)).toThrow(TypeError);
  });

  it.each([
    ['a space', '/a b'],
    ['a tab', '/a\tb'],
    ['CRLF (request splitting)', '/a\r\nHost: evil'],
    ['LF', '/a\nb'],
    ['NUL', '/a\x00'],
    ['DEL', '/a\x7f'],
    ['a non-ASCII character (paths are sent percent-encoded)', '/caf\xe9'],
    ['nothing', ''],
  ])('throws TypeError for a path with %s', (_name, path) => {
    expect(() => requestHead('GET', path, 'h', {}, null)).toThrow(TypeError);
    expect(() => requestHead('GET', path, 'h', {}, null)).toThrow('the request path holds a space or a control character');
  });

  it.each(['/', '*', '/a/b?c=d&e=%20f#', "/~!$&'()*+,;=:@"])('accepts the path %s', (path) => {
    expect(requestHead('GET', path, 'h', {}, null).split('\r\n')[0]).toBe(`GET ${path} HTTP/1.1`);
  });
});

describe('hostHeader', () => {
  it.each([
    ['example.com', 80, false, 'example.com'],
    ['example.com', 443, true, 'example.com'],
    ['example.com', 443, false, 'example.com:443'],
    ['example.com', 80, true, 'example.com:80'],
    ['example.com', 8080, false, 'example.com:8080'],
    ['mcp.example.com', 8443, true, 'mcp.example.com:8443'],
    ['127.0.0.1', 80, false, '127.0.0.1'],
    ['127.0.0.1', 3000, false, '127.0.0.1:3000'],
    ['::1', 80, false, '[::1]'],
    ['::1', 443, true, '[::1]'],
    ['::1', 8080, false, '[::1]:8080'],
    ['2001:db8::1', 8443, true, '[2001:db8::1]:8443'],
  ])('%s port %i https=%s -> %s', (hostname, port, https, want) => {
    expect(hostHeader(hostname, port, https)).toBe(want);
  });
});

describe('keepAliveHintMs', () => {
  it.each<[string, Record<string, string | string[]>, number | null]>([
    ['timeout=5', { 'keep-alive': 'timeout=5' }, 5000],
    ['timeout=5, max=100', { 'keep-alive': 'timeout=5, max=100' }, 5000],
    ['max=100, timeout=7', { 'keep-alive': 'max=100, timeout=7' }, 7000],
    ['max=100,timeout=7 (no space)', { 'keep-alive': 'max=100,timeout=7' }, 7000],
    ['leading whitespace', { 'keep-alive': '  timeout=9' }, 9000],
    ['Timeout=3 (case-insensitive)', { 'keep-alive': 'Timeout=3' }, 3000],
    ['timeout=0', { 'keep-alive': 'timeout=0' }, 0],
    ['timeout=120', { 'keep-alive': 'timeout=120' }, 120_000],
    ['no keep-alive header', {}, null],
    ['other headers only', { connection: 'keep-alive', 'content-length': '0' }, null],
    ['max only', { 'keep-alive': 'max=100' }, null],
    ['empty', { 'keep-alive': '' }, null],
    ['timeout=abc', { 'keep-alive': 'timeout=abc' }, null],
    ['timeout= (no value)', { 'keep-alive': 'timeout=' }, null],
    ['timeout=-1', { 'keep-alive': 'timeout=-1' }, null],
    ['timeout = 5 (spaces)', { 'keep-alive': 'timeout = 5' }, null],
    ['xtimeout=5 (another parameter)', { 'keep-alive': 'xtimeout=5' }, null],
    ['a list value (not a string)', { 'keep-alive': ['timeout=5'] }, null],
  ])('%s', (_name, headers, want) => {
    expect(keepAliveHintMs(headers)).toBe(want);
  });
});
