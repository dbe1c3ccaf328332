/**
 * The local endpoint's client side: HTTP/1.1 served on plain TCP sockets (http1.ts reads the
 * requests), one request at a time per connection, each handed over as an `Exchange` once its
 * body is in.
 *
 * Why not node:http's server: every tool call passes here, and its per-request machinery (an
 * IncomingMessage stream, a ServerResponse stream with its header bookkeeping, events on
 * both) was most of what the daemon's endpoint still cost per call once the upstream side
 * was lean (docs/benchmarks.md, "Fifth pass"). What the endpoint needs is narrow: small
 * JSON-RPC bodies, answers relayed as they come, keep-alive, and the limits node:http applies
 * (head size, head and request deadlines, keep-alive and stream idle timeouts), which are
 * applied here the same way.
 *
 * A connection's story: idle (no request byte yet: closed after `headersTimeoutMs` before its
 * first request, `keepAliveTimeoutMs` between requests) -> reading (the head must be in
 * within `headersTimeoutMs` of its first byte, the whole request within `requestTimeoutMs`)
 * -> responding (no deadline unless `idleMs`: a GET stream may be quiet for hours; bytes of a
 * pipelined request are kept, up to a bound, until the answer ends) -> idle, or closed when
 * either side asked for that. A malformed request is answered 400 (431 for a head too big,
 * 501 for a transfer coding other than chunked) and the connection is closed.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { BAD_VALUE, ParseError, RequestParser, type RequestHead, type RequestSink } from './http1.js';

export interface ServeOptions {
  /** Bodies over this are not kept: the exchange is handed over at once with `tooLarge` set, and the connection closes after its answer. */
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Inactivity limit while answering; 0 = none. */
  idleMs: number;
  /** A new connection (admission: the caller may destroy it). */
  onConnection(socket: Socket): void;
  onExchange(ex: Exchange): void;
}

/** Bytes of pipelined requests kept while an answer is going out; past this the socket is paused. */
const MAX_PIPELINED = 64 * 1024;

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const CRLF = Buffer.from('\r\n');

const enum Framing {
  None,
  Length,
  Chunked,
  Close,
}

/**
 * One request, its body in, and its answer: `writeHead`, then `write`s and `end` (the head
 * leaves with the first body bytes unless `flushHeaders`), or `destroy` to cut it.
 */
export class Exchange {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly socket: Socket;
  /** The whole body (empty when none). */
  body: Buffer = EMPTY;
  /** The body was over `maxBodyBytes` (and not kept). */
  tooLarge = false;
  headersSent = false;
  /** The answer ended (all of it handed to the socket). */
  finished = false;
  readonly #conn: Connection;
  readonly #minor: 0 | 1;
  #keepAlive: boolean;
  #head: string | null = null;
  #framing = Framing.None;
  #noBody = false;
  #length = 0;
  #onClose: Array<() => void> = [];
  /** The connection closed before the answer ended. */
  #gone = false;
  #onDrain: (() => void) | null = null;

  constructor(conn: Connection, head: RequestHead) {
    this.#conn = conn;
    this.socket = conn.socket;
    this.method = head.method;
    this.url = head.url;
    this.headers = head.headers;
    this.#minor = head.minor;
    this.#keepAlive = head.keepAlive;
  }

  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  /** The connection closes after this answer. */
  closeAfter(): void {
    this.#keepAlive = false;
  }

  /** Called once if the connection closes before the answer ended (the client went away); at once if it already has. */
  onClose(cb: () => void): void {
    if (this.#gone) cb();
    else this.#onClose.push(cb);
  }

  /** Called when the socket has room again after a `write` returned false. */
  onDrain(cb: () => void): void {
    this.#onDrain = cb;
  }

  writeHead(status: number, headers: Record<string, string | string[]>): void {
    if (this.headersSent || this.#head !== null) throw new Error('the answer head was already written');
    let head = `HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\n`;
    let length: string | null = null;
    for (const name in headers) {
      const v = headers[name] as string | string[];
      // Names are lower case from this endpoint's own code; others are lowered here.
      const lower = /[A-Z]/.test(name) ? name.toLowerCase() : name;
      if (lower === 'content-length') length = v as string;
      if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
      for (const value of typeof v === 'string' ? [v] : v) {
        if (BAD_VALUE.test(value)) throw new TypeError(`the answer header "${name}" holds an invalid character`);
        head += `${name}: ${value}\r\n`;
      }
    }
    this.#noBody = this.method === 'HEAD' || status === 204 || status === 304;
    if (this.#noBody || status < 200) this.#framing = Framing.None;
    else if (length !== null) {
      this.#framing = Framing.Length;
      this.#length = Number(length);
    } else if (this.#minor === 1) {
      this.#framing = Framing.Chunked;
      head += 'transfer-encoding: chunked\r\n';
    } else {
      // An HTTP/1.0 client: the body ends with the connection.
      this.#framing = Framing.Close;
      this.#keepAlive = false;
    }
    if (this.#conn.closing) this.#keepAlive = false;
    head += this.#keepAlive ? `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.#conn.keepAliveTimeoutMs / 1000)}\r\n\r\n` : 'connection: close\r\n\r\n';
    this.#head = head;
  }

  /** Sends the head now (a stream's head, so the client sees the call accepted). */
  flushHeaders(): void {
    if (this.#head === null || this.finished) return;
    this.socket.write(this.#head, 'latin1');
    this.#head = null;
    this.headersSent = true;
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  /** False when the socket's buffer is full: wait for `onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.finished || this.socket.destroyed) return false;
    if (this.#noBody || chunk.length === 0) {
      this.flushHeaders();
      return true;
    }
    const s = this.socket;
    s.cork();
    // The head (when still held) leaves in the same packet as these bytes.
    this.flushHeaders();
    let ok: boolean;
    if (this.#framing === Framing.Chunked) {
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write(CRLF);
    } else {
      if (this.#framing === Framing.Length) this.#length -= chunk.length;
      ok = s.write(chunk);
    }
    s.uncork();
    return ok;
  }

  /** Ends the answer (with `body` as its last bytes). */
  end(body?: Buffer | string): void {
    if (this.finished) return;
    if (body !== undefined && body.length > 0) this.write(typeof body === 'string' ? Buffer.from(body) : body);
    else this.flushHeaders();
    if (this.socket.destroyed) return;
    if (this.#framing === Framing.Chunked) this.socket.write(LAST_CHUNK);
    // Fewer bytes than the length announced: the client must see the answer cut, not complete.
    if (this.#framing === Framing.Length && this.#length !== 0) {
      this.destroy();
      return;
    }
    this.finished = true;
    this.#conn.answered(this);
  }

  /** Cuts the answer: the connection is closed. */
  destroy(): void {
    this.socket.destroy();
  }

  /**
   * The answer as a Writable, for stream pipelines (a GET stream's events rewritten on the
   * way); it errors when the client goes away, so the pipeline ends.
   */
  writable(): Writable {
    let waiting: (() => void) | null = null;
    const w = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.write(chunk)) cb();
        else waiting = () => cb();
      },
      final: (cb) => {
        this.end();
        cb();
      },
      destroy: (e, cb) => {
        if (!this.finished) this.destroy();
        cb(e);
      },
    });
    this.onDrain(() => {
      const go = waiting;
      waiting = null;
      go?.();
    });
    this.onClose(() => w.destroy(new Error('the client went away')));
    return w;
  }

  /** From the connection. */
  _closed(): void {
    if (this.finished || this.#gone) return;
    this.#gone = true;
    const cbs = this.#onClose;
    this.#onClose = [];
    for (const cb of cbs) cb();
  }

  _drained(): void {
    this.#onDrain?.();
  }
}

const EMPTY = Buffer.alloc(0);

const enum Phase {
  Idle,
  Reading,
  Responding,
}

class Connection implements RequestSink {
  readonly socket: Socket;
  readonly keepAliveTimeoutMs: number;
  readonly #opts: ServeOptions;
  readonly #parser: RequestParser;
  #phase = Phase.Idle;
  #current: Exchange | null = null;
  #chunks: Buffer[] = [];
  #size = 0;
  #deadline: NodeJS.Timeout | null = null;
  #headAt = 0;
  /** Set once the connection is to close after the current answer. */
  closing = false;
  /** A 413 is answered: the rest of that body is read and dropped, then the connection closes. */
  #drainThenClose = false;

  constructor(socket: Socket, opts: ServeOptions) {
    this.socket = socket;
    this.#opts = opts;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs;
    this.#parser = new RequestParser(this);
    socket.setTimeout(opts.headersTimeoutMs);
    socket.on('timeout', () => socket.destroy());
    socket.on('data', (b: Buffer) => this.#feed(b));
    socket.on('drain', () => this.#current?._drained());
    socket.on('error', () => socket.destroy());
    // The client closed its side: it went away (as node:http reads it), and what it asked is dropped.
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      this.#clearDeadline();
      this.#current?._closed();
    });
  }

  #feed(b: Buffer): void {
    if (this.socket.destroyed) return;
    if (this.#phase === Phase.Idle) {
      this.#phase = Phase.Reading;
      this.#headAt = Date.now();
      this.socket.setTimeout(0);
    }
    try {
      this.#parser.execute(b);
    } catch (e) {
      this.#refuse(e);
      return;
    }
    if (this.#phase === Phase.Reading && this.#deadline === null && !this.socket.destroyed) {
      // The request did not come whole in one read: its deadlines apply (slowloris).
      this.#armDeadline(this.#current === null ? this.#opts.headersTimeoutMs : this.#opts.requestTimeoutMs);
    }
    // Bytes of the next request while this one is answered: kept, within bounds.
    if (this.#phase === Phase.Responding && this.#parser.pipelined > MAX_PIPELINED) this.socket.pause();
  }

  #armDeadline(ms: number): void {
    const left = Math.max(0, this.#headAt + ms - Date.now());
    this.#deadline = setTimeout(() => {
      this.#deadline = null;
      if (this.#drainThenClose) this.socket.destroy();
      else if (this.#phase === Phase.Reading) this.#refuseWith(408, 'Request Timeout');
    }, left);
  }

  #clearDeadline(): void {
    if (this.#deadline === null) return;
    clearTimeout(this.#deadline);
    this.#deadline = null;
  }

  head(h: RequestHead): void {
    this.#current = new Exchange(this, h);
    this.#chunks = [];
    this.#size = 0;
    if (this.#deadline !== null) {
      // The head is in: from now on the whole request's deadline applies.
      this.#clearDeadline();
      this.#armDeadline(this.#opts.requestTimeoutMs);
    }
    if (h.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  data(chunk: Buffer): void {
    const ex = this.#current;
    if (!ex || ex.tooLarge) return;
    this.#size += chunk.length;
    if (this.#size > this.#opts.maxBodyBytes) {
      // Not kept; answered at once (the rest of the body is read and dropped), then closed.
      ex.tooLarge = true;
      this.#chunks = [];
      ex.closeAfter();
      this.closing = true;
      this.#dispatch(ex);
      return;
    }
    this.#chunks.push(chunk);
  }

  end(): void {
    const ex = this.#current;
    this.#clearDeadline();
    if (this.#drainThenClose) {
      this.socket.destroySoon();
      return;
    }
    // Over the limit and not answered yet: the connection closes after the answer.
    if (!ex || ex.tooLarge) return;
    // Copied: the pieces are slices of socket reads, which a kept body must not pin.
    ex.body = this.#chunks.length === 0 ? EMPTY : this.#chunks.length === 1 ? Buffer.from(this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    this.#dispatch(ex);
  }

  #dispatch(ex: Exchange): void {
    this.#phase = Phase.Responding;
    if (this.#opts.idleMs > 0) this.socket.setTimeout(this.#opts.idleMs);
    this.#opts.onExchange(ex);
  }

  /** The answer ended: the connection closes, or waits for (or reads) the next request. */
  answered(ex: Exchange): void {
    if (ex !== this.#current) return;
    this.#current = null;
    if (!ex.keepAlive || this.closing) {
      if (ex.tooLarge && !this.#parser.done) {
        // The client may still be sending the body it was refused: read to its end (bounded
        // by the request deadline), so it sees the answer instead of a reset.
        this.#drainThenClose = true;
        this.#armDeadline(this.#opts.requestTimeoutMs);
        return;
      }
      this.socket.destroySoon();
      return;
    }
    this.#phase = Phase.Idle;
    this.socket.setTimeout(this.keepAliveTimeoutMs);
    const rest = this.#parser.next();
    if (this.socket.isPaused()) this.socket.resume();
    // Next tick, not nested in this answer's end: a run of pipelined requests answered at once
    // must not deepen the stack; nothing read from the socket can come in between.
    if (rest) process.nextTick(() => this.#feed(rest));
  }

  #refuse(e: unknown): void {
    const code = e instanceof ParseError ? e.code : '';
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'HPE_INVALID_TRANSFER_ENCODING' ? 501 : code === 'HPE_INVALID_VERSION' ? 505 : 400;
    this.#refuseWith(status, REASONS[status] ?? 'Bad Request');
  }

  /** A request that cannot be served: answered plainly when no answer is under way, and the connection closed. */
  #refuseWith(status: number, text: string): void {
    this.#clearDeadline();
    // The rest of a refused (413) body is broken or late: nothing more to answer.
    if (this.#drainThenClose) {
      this.socket.destroy();
      return;
    }
    if (this.#phase === Phase.Responding) {
      // An answer is going out: the broken pipelined request ends the connection after it.
      this.closing = true;
      return;
    }
    const body = `${text}\n`;
    this.socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`, 'latin1');
    this.socket.destroySoon();
  }
}

export interface Served {
  server: Server;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Serves HTTP/1.1 on a net.Server (not yet listening). */
export function serveHttp(opts: ServeOptions): Served {
  const sockets = new Set<Socket>();
  // Half-open allowed only so that a client's close is seen as such ('end' destroys at once).
  const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    new Connection(socket, opts);
    opts.onConnection(socket);
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
