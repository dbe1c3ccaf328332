/**
 * The stdio wrapper's session logic as a pure state machine: events in (a line from the
 * client or a server child, a rotation signal, a child's exit, a timer), actions out (write
 * a line, spawn or end a child, set a timer, exit). No I/O here; relay.ts performs the
 * actions and feeds the events back. Tested with tables in test/broker/session.test.ts.
 *
 * A rotation, make-before-break:
 *   running ──announce──▶ held (new client requests queue; in-flight ones go on; `drained`
 *     is reported when none is left, and the rotation waits for it, bounded, before it
 *     calls regenerate: those calls finish with the old token, still valid)
 *     held ──stored──▶ starting child n+1 (replay initialize under a private id)
 *     starting ──initialize answered, same protocol──▶ notifications/initialized,
 *       logging/setLevel and resource subscriptions re-applied, held requests routed to
 *       n+1 ──▶ running on n+1; child n drains (in-flight calls finish, bounded) and ends.
 *     held ──aborted / hold timeout──▶ running on n (held requests released to it)
 *     starting ──exit / timeout / other protocol──▶ running on n, held requests answered
 *       with a JSON-RPC error; the client session stays up.
 * A request that reached a child is never sent to another one: a tool could run twice.
 *
 * Rotations back to back: an announce is never dropped, whatever the wrapper is doing. It
 * is merged into the state there is: while held it restarts the hold (timer, drain report
 * for the new generation); while a swap is in progress it is remembered, `drained` goes out
 * at once (no client call can be in flight with the token it announces: the starting child
 * has been sent none, the old child's token is the one the previous rotation replaced), and
 * when the new child takes over, requests stay held until this rotation's `stored` (which
 * starts the next swap) or `aborted` / its hold timeout (which release them to the new
 * child). A `stored` during a swap replaces the starting child, which holds the older token.
 * Dropping it (as this machine once did) let the new child serve calls with a token the
 * second regenerate call then killed: failed calls until the next swap.
 */
import { errorResponse, idKey, withId, type JsonRpcId, type Parsed } from './message.js';

export interface SessionOptions {
  /** Longest hold between announce and stored (the regenerate call in between). */
  holdMs: number;
  /** The same for revoke-now: a leak does not wait. */
  revokeHoldMs: number;
  /** Longest start + handshake of the new child before the swap is given up. */
  readyMs: number;
  /** Longest the old child may take to finish its in-flight calls after the swap. */
  drainMs: number;
}

export const DEFAULT_OPTIONS: SessionOptions = { holdMs: 20_000, revokeHoldMs: 4_000, readyMs: 20_000, drainMs: 30_000 };

export type TimerName = 'hold' | 'ready' | 'drain';

export type SessionEvent =
  | { type: 'start' }
  | { type: 'client'; line: string; msg: Parsed }
  | { type: 'client-end' }
  | { type: 'child'; child: number; line: string; msg: Parsed }
  | { type: 'child-exit'; child: number; code: number | null }
  | { type: 'spawn-failed'; child: number; reason: string }
  | { type: 'signal'; phase: 'announce' | 'stored' | 'aborted'; revoke?: boolean }
  | { type: 'timer'; name: TimerName; child?: number };

export type SessionAction =
  | { type: 'to-client'; line: string }
  | { type: 'to-child'; child: number; line: string }
  | { type: 'spawn'; child: number }
  | { type: 'end-child'; child: number }
  | { type: 'set-timer'; name: TimerName; ms: number; child?: number }
  | { type: 'clear-timer'; name: TimerName; child?: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string }
  /** After an announce: no call is in flight at the running child any more (the rotation may go on). */
  | { type: 'drained' }
  | { type: 'exit'; code: number };

interface Child {
  id: number;
  alive: boolean;
  /** Client requests sent to this child and not yet answered, by id key. */
  inflight: Map<string, JsonRpcId>;
  draining: boolean;
}

interface Held {
  line: string;
  msg: Parsed;
}

/** JSON-RPC "internal error": the request was understood but the server is not there to run it. */
export const E_RESTART_FAILED = -32603;
const PRIVATE_PREFIX = 'mcp-token-rotator-relay-';

export class RelaySession {
  readonly opts: SessionOptions;
  #children = new Map<number, Child>();
  #current = 0;
  #next: number | null = null;
  #lastId = 0;
  /** An announced rotation not yet closed by `stored` or `aborted`: new requests are held. */
  #hold: { revoke: boolean } | null = null;
  #awaitDrain = false;
  #held: Held[] = [];
  #clientEnded = false;
  #exitCode = 0;
  // What a new child must be told to carry the session over.
  #init: { line: string; id: JsonRpcId } | null = null;
  #protocolVersion: string | null = null;
  #clientInitialized = false;
  #logLevel: string | null = null;
  #subs = new Map<string, string>();
  // Wrapper-private requests to a child whose answers the client must not see.
  #private = new Map<string, { child: number; purpose: 'initialize' | 'reapply' }>();
  #privateSeq = 0;
  // Server-to-client requests: the client sees wrapper ids, unique across children.
  #serverReqs = new Map<string, { child: number; id: JsonRpcId }>();
  #serverSeq = 0;

  constructor(opts: Partial<SessionOptions> = {}) {
    this.opts = { ...DEFAULT_OPTIONS, ...opts };
  }

  /** For tests and the bench: which child serves new requests, and what waits. */
  get current(): number {
    return this.#current;
  }
  /** New requests wait: a rotation is announced, or a new child is taking over. */
  get holding(): boolean {
    return this.#hold !== null || this.#next !== null;
  }
  /** The child being started by a swap, if any. */
  get starting(): number | null {
    return this.#next;
  }
  get heldCount(): number {
    return this.#held.length;
  }
  inflight(child: number): number {
    return this.#children.get(child)?.inflight.size ?? 0;
  }

  handle(ev: SessionEvent): SessionAction[] {
    const out: SessionAction[] = [];
    switch (ev.type) {
      case 'start':
        this.#current = this.spawn(out);
        break;
      case 'client':
        this.fromClient(ev.line, ev.msg, out);
        break;
      case 'client-end':
        this.#clientEnded = true;
        for (const c of this.#children.values()) if (c.alive) out.push({ type: 'end-child', child: c.id });
        this.maybeExit(out);
        break;
      case 'child':
        this.fromChild(ev.child, ev.line, ev.msg, out);
        break;
      case 'child-exit':
        this.childExit(ev.child, ev.code, out);
        break;
      case 'spawn-failed':
        if (ev.child === this.#next) this.failSwap(ev.reason, out);
        else if (ev.child === this.#current) {
          out.push({ type: 'log', level: 'error', msg: `cannot start the server: ${ev.reason}` });
          this.childExit(ev.child, 1, out);
        }
        break;
      case 'signal':
        this.signal(ev.phase, ev.revoke === true, out);
        break;
      case 'timer':
        this.timer(ev.name, ev.child, out);
        break;
    }
    return out;
  }

  private spawn(out: SessionAction[]): number {
    const id = ++this.#lastId;
    this.#children.set(id, { id, alive: true, inflight: new Map(), draining: false });
    out.push({ type: 'spawn', child: id });
    return id;
  }

  private privateId(child: number, purpose: 'initialize' | 'reapply'): string {
    const id = `${PRIVATE_PREFIX}${++this.#privateSeq}`;
    this.#private.set(idKey(id), { child, purpose });
    return id;
  }

  // ---- client to server

  private fromClient(line: string, msg: Parsed, out: SessionAction[]): void {
    if (msg.kind === 'response' && msg.id !== undefined) {
      // The answer to a server-to-client request goes back to the child that asked, under its own id.
      const target = this.#serverReqs.get(idKey(msg.id));
      if (target) {
        this.#serverReqs.delete(idKey(msg.id));
        if (this.#children.get(target.child)?.alive) out.push({ type: 'to-child', child: target.child, line: withId(line, target.id) });
        return;
      }
    }
    if (msg.kind === 'notification' && msg.method === 'notifications/cancelled' && msg.cancels !== undefined) {
      const k = idKey(msg.cancels);
      const heldAt = this.#held.findIndex((h) => h.msg.kind === 'request' && h.msg.id !== undefined && idKey(h.msg.id) === k);
      if (heldAt >= 0) {
        // Cancelled before any server saw it: it simply never runs (no answer is due).
        this.#held.splice(heldAt, 1);
        return;
      }
      for (const c of this.#children.values()) {
        if (c.alive && c.inflight.has(k)) {
          out.push({ type: 'to-child', child: c.id, line });
          return;
        }
      }
    }
    if (this.holding) {
      this.#held.push({ line, msg });
      return;
    }
    this.send(line, msg, out);
  }

  private send(line: string, msg: Parsed, out: SessionAction[]): void {
    const c = this.#children.get(this.#current);
    if (!c || !c.alive) {
      if (msg.kind === 'request' && msg.id !== undefined) out.push({ type: 'to-client', line: errorResponse(msg.id, E_RESTART_FAILED, 'The Certorix MCP server is not running (it could not be restarted after a token rotation); restart the server in your MCP client.') });
      return;
    }
    if (msg.kind === 'request' && msg.id !== undefined) {
      c.inflight.set(idKey(msg.id), msg.id);
      // Recorded when a child gets them (not while held), so a new child can be brought to
      // the same state without receiving anything twice.
      if (msg.method === 'initialize') this.#init = { line, id: msg.id };
      else if (msg.method === 'logging/setLevel') this.#logLevel = line;
      else if (msg.method === 'resources/subscribe' && msg.uri !== undefined) this.#subs.set(msg.uri, line);
      else if (msg.method === 'resources/unsubscribe' && msg.uri !== undefined) this.#subs.delete(msg.uri);
    }
    if (msg.kind === 'notification' && msg.method === 'notifications/initialized') this.#clientInitialized = true;
    out.push({ type: 'to-child', child: c.id, line });
  }

  // ---- server to client

  private fromChild(child: number, line: string, msg: Parsed, out: SessionAction[]): void {
    const c = this.#children.get(child);
    if (!c) return;
    if (msg.kind === 'response' && msg.id !== undefined) {
      const k = idKey(msg.id);
      const priv = this.#private.get(k);
      if (priv && priv.child === child) {
        this.#private.delete(k);
        if (priv.purpose === 'initialize' && child === this.#next) {
          if (this.#protocolVersion !== null && msg.protocolVersion !== undefined && msg.protocolVersion !== this.#protocolVersion) {
            this.failSwap(`the new server negotiated protocol ${msg.protocolVersion}, the session uses ${this.#protocolVersion}`, out);
          } else if (msg.protocolVersion === undefined && /"error"\s*:/.test(line)) {
            this.failSwap('the new server refused the replayed initialize', out);
          } else {
            this.ready(out);
          }
        }
        return;
      }
      if (c.inflight.delete(k)) {
        if (this.#init && idKey(this.#init.id) === k && msg.protocolVersion !== undefined) this.#protocolVersion = msg.protocolVersion;
        out.push({ type: 'to-client', line });
        this.checkDrained(out);
        if (c.draining && c.inflight.size === 0) this.endDrained(c, out);
        return;
      }
      // A late answer from a child already ended (its call was answered with an error) is dropped.
      if (c.alive) out.push({ type: 'to-client', line });
      return;
    }
    if (child === this.#next) {
      // A child still starting speaks to no one but the wrapper (its log lines are its own).
      if (msg.kind === 'request' && msg.id !== undefined) out.push({ type: 'to-child', child, line: errorResponse(msg.id, -32601, 'The client session is not handed over yet.') });
      return;
    }
    if (msg.kind === 'request' && msg.id !== undefined) {
      const wid = ++this.#serverSeq;
      this.#serverReqs.set(idKey(wid), { child, id: msg.id });
      out.push({ type: 'to-client', line: withId(line, wid) });
      return;
    }
    out.push({ type: 'to-client', line });
  }

  // ---- rotation

  private signal(phase: 'announce' | 'stored' | 'aborted', revoke: boolean, out: SessionAction[]): void {
    if (phase === 'announce') {
      // Never dropped (see the story at the head): merged into a hold or a swap in progress.
      const swapping = this.#next !== null;
      const again = this.#hold !== null;
      this.#hold = { revoke };
      const why = swapping ? ' (after the server restart in progress)' : again ? ' (another rotation; the hold starts again)' : '';
      out.push({ type: 'log', level: 'info', msg: `token rotation announced: holding new requests${why}` });
      out.push({ type: 'set-timer', name: 'hold', ms: revoke ? this.opts.revokeHoldMs : this.opts.holdMs });
      this.#awaitDrain = true;
      this.checkDrained(out);
      return;
    }
    if (phase === 'aborted') {
      if (this.#hold === null) return;
      this.#hold = null;
      out.push({ type: 'clear-timer', name: 'hold' });
      if (this.#next === null) {
        out.push({ type: 'log', level: 'info', msg: 'token rotation aborted: releasing held requests to the running server' });
        this.release(out);
      }
      // During a swap the new child gets them when it takes over.
      return;
    }
    // stored
    this.#awaitDrain = false;
    if (this.#hold !== null) {
      this.#hold = null;
      out.push({ type: 'clear-timer', name: 'hold' });
    }
    if (this.#next !== null) {
      // A second rotation while a child is starting: that child may hold the older token.
      const stale = this.#next;
      this.#children.get(stale)!.alive = false;
      out.push({ type: 'end-child', child: stale });
      out.push({ type: 'clear-timer', name: 'ready' });
    }
    const n = this.spawn(out);
    this.#next = n;
    out.push({ type: 'log', level: 'info', msg: `new token stored: starting server #${n}` });
    out.push({ type: 'set-timer', name: 'ready', ms: this.opts.readyMs });
    if (this.#init) {
      out.push({ type: 'to-child', child: n, line: withId(this.#init.line, this.privateId(n, 'initialize')) });
    } else {
      this.ready(out);
    }
  }

  private ready(out: SessionAction[]): void {
    const n = this.#next as number;
    out.push({ type: 'clear-timer', name: 'ready' });
    // mcp-server-hmr's mistake was to skip this: a server may refuse requests until it comes.
    if (this.#clientInitialized) out.push({ type: 'to-child', child: n, line: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    if (this.#logLevel) out.push({ type: 'to-child', child: n, line: withId(this.#logLevel, this.privateId(n, 'reapply')) });
    for (const line of this.#subs.values()) out.push({ type: 'to-child', child: n, line: withId(line, this.privateId(n, 'reapply')) });
    const old = this.#children.get(this.#current);
    this.#current = n;
    this.#next = null;
    out.push({ type: 'log', level: 'info', msg: `server #${n} took over the session` });
    if (old && old.alive) {
      old.draining = true;
      if (old.inflight.size === 0) this.endDrained(old, out);
      else out.push({ type: 'set-timer', name: 'drain', child: old.id, ms: this.opts.drainMs });
    }
    // Another rotation announced during the swap: its token replaces this child's, so
    // requests stay held until its `stored` (or its abort / hold timeout).
    if (this.#hold === null) this.release(out);
    else out.push({ type: 'log', level: 'info', msg: 'another token rotation is announced: requests stay held until its new token is stored' });
  }

  /**
   * Drained is reported once per announce, when no call is in flight with the token being
   * rotated: none at the running child; during a swap at once (the starting child has been
   * sent no client call, and the old child's token is already replaced).
   */
  private checkDrained(out: SessionAction[]): void {
    if (!this.#awaitDrain) return;
    if (this.#next === null) {
      const c = this.#children.get(this.#current);
      if (c && c.alive && c.inflight.size > 0) return;
    }
    this.#awaitDrain = false;
    out.push({ type: 'drained' });
  }

  /** Held requests go to the running child; only when nothing holds them any more. */
  private release(out: SessionAction[]): void {
    this.#awaitDrain = false;
    const held = this.#held;
    this.#held = [];
    for (const h of held) this.send(h.line, h.msg, out);
  }

  private failSwap(reason: string, out: SessionAction[]): void {
    const n = this.#next as number;
    this.#next = null;
    const c = this.#children.get(n);
    if (c?.alive) {
      c.alive = false;
      out.push({ type: 'end-child', child: n });
    }
    out.push({ type: 'clear-timer', name: 'ready' });
    out.push({ type: 'log', level: 'error', msg: `the server could not be restarted with the new token: ${reason}` });
    // A rotation announced since will start another child at its `stored`: requests wait for it.
    if (this.#hold !== null) return;
    const held = this.#held;
    this.#held = [];
    for (const h of held) {
      if (h.msg.kind === 'request' && h.msg.id !== undefined) {
        out.push({ type: 'to-client', line: errorResponse(h.msg.id, E_RESTART_FAILED, `The Certorix MCP server could not be restarted with the rotated token (${reason}). Run "mcp-token-rotator status", then restart this server in your MCP client.`) });
      }
    }
  }

  private endDrained(c: Child, out: SessionAction[]): void {
    c.alive = false;
    out.push({ type: 'clear-timer', name: 'drain', child: c.id });
    out.push({ type: 'end-child', child: c.id });
  }

  private timer(name: TimerName, child: number | undefined, out: SessionAction[]): void {
    if (name === 'hold') {
      if (this.#hold === null) return;
      this.#hold = null;
      // During a swap the new child gets them when it takes over.
      if (this.#next === null) {
        out.push({ type: 'log', level: 'warn', msg: 'the announced rotation did not finish in time: releasing held requests to the running server' });
        this.release(out);
      }
    } else if (name === 'ready') {
      if (this.#next !== null) this.failSwap(`it did not start and answer initialize within ${this.opts.readyMs} ms`, out);
    } else if (child !== undefined) {
      const c = this.#children.get(child);
      if (c && c.alive && c.draining) {
        this.failInflight(c, `The call did not finish within ${this.opts.drainMs} ms of a token rotation and was stopped; run it again.`, out);
        this.endDrained(c, out);
      }
    }
  }

  private failInflight(c: Child, message: string, out: SessionAction[]): void {
    for (const id of c.inflight.values()) out.push({ type: 'to-client', line: errorResponse(id, E_RESTART_FAILED, message) });
    c.inflight.clear();
  }

  private childExit(child: number, code: number | null, out: SessionAction[]): void {
    const c = this.#children.get(child);
    if (!c) return;
    const wasAlive = c.alive;
    c.alive = false;
    this.failInflight(c, 'The Certorix MCP server ended before answering.', out);
    for (const [k, v] of this.#serverReqs) if (v.child === child) this.#serverReqs.delete(k);
    if (c.draining) out.push({ type: 'clear-timer', name: 'drain', child });
    if (child === this.#current) this.checkDrained(out);
    if (child === this.#next) {
      this.failSwap(`it exited with code ${code ?? 'null'} during start-up`, out);
    } else if (child === this.#current && wasAlive && !this.#clientEnded && !this.holding) {
      // The server ended on its own: end the wrapper the same way so the client sees it.
      out.push({ type: 'log', level: 'warn', msg: `the server exited with code ${code ?? 'null'}` });
      this.#exitCode = code ?? 1;
      this.#clientEnded = true;
    } else if (child === this.#current) {
      this.#exitCode = code ?? 0;
    }
    this.maybeExit(out);
  }

  private maybeExit(out: SessionAction[]): void {
    if (!this.#clientEnded) return;
    for (const c of this.#children.values()) if (c.alive) return;
    out.push({ type: 'exit', code: this.#exitCode });
  }
}
