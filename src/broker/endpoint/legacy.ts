/**
 * Calls on the legacy HTTP+SSE transport, counted as on the wire until answered. There a
 * POSTed request is answered `202 Accepted` at once and its JSON-RPC response comes later on
 * the session's GET stream: counting only the POST would let a rotation regenerate while the
 * tool still runs upstream with the old token (a tool that uses the caller's token again
 * then fails). A call counts from just before its POST goes out (the answer may pass on the
 * stream before the 202 does) until its response passes on the stream, its POST is not
 * accepted, the stream closes, or `capMs` passes (a lost answer must not slow every later
 * rotation; the rotation's own wait is bounded anyway).
 *
 * A key names one session's message endpoint: the route secret and the upstream path and
 * query the `endpoint` event announced (the query carries the session).
 */
export class LegacyCalls {
  readonly #streams = new Map<string, Map<string, () => void>>();
  readonly #capMs: number;

  constructor(opts: { capMs?: number } = {}) {
    this.#capMs = opts.capMs ?? 60_000;
  }

  /** A GET stream announced this message endpoint: POSTs to it are counted from now on. */
  open(key: string): void {
    if (!this.#streams.has(key)) this.#streams.set(key, new Map());
  }

  /**
   * Counts each request id of a POST to `key` (with `track`, which counts one on the wire and
   * returns its end). Returns what un-counts them again, for a POST that was not accepted.
   * Nothing is counted for a key with no open stream: no answer would be seen there.
   */
  sent(key: string, ids: string[], track: () => () => void): () => void {
    const pending = this.#streams.get(key);
    if (!pending) return () => undefined;
    const ends: Array<() => void> = [];
    for (const id of ids) {
      // A client reusing an id while the first call runs: the answers cannot be told apart.
      pending.get(id)?.();
      const done = track();
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        if (pending.get(id) === end) pending.delete(id);
        done();
      };
      const timer = setTimeout(end, this.#capMs);
      timer.unref();
      pending.set(id, end);
      ends.push(end);
    }
    return () => {
      for (const end of ends) end();
    };
  }

  /** A response with this id passed on the stream of `key`. */
  answered(key: string, id: string): void {
    this.#streams.get(key)?.get(id)?.();
  }

  /** The stream ended: no answer can come any more. */
  closed(key: string): void {
    const pending = this.#streams.get(key);
    this.#streams.delete(key);
    for (const end of [...(pending?.values() ?? [])]) end();
  }

  /** Whether a GET stream that announced `key` is open (only then are POSTs to it forwarded). */
  isOpen(key: string): boolean {
    return this.#streams.has(key);
  }

  /** Calls counted on `key` (tests). */
  pending(key: string): number {
    return this.#streams.get(key)?.size ?? 0;
  }
}
