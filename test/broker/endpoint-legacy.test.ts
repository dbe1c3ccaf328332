/**
 * Legacy HTTP+SSE calls counted until answered on the stream: the pure event parsing and
 * the LegacyCalls bookkeeping (the endpoint wiring is in endpoint.test.ts).
 */
import { describe, expect, it, vi } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { messageIds, responseIds, responseWatcher, splitEvents } from '../../src/broker/endpoint/sse.js';
import { LegacyCalls } from '../../src/broker/endpoint/legacy.js';

describe('event stream parsing', () => {
  it.each([
    ['', [], ''],
    ['data: a', [], 'data: a'],
    ['data: a\n\ndata: b\r\n\r\nx', ['data: a', 'data: b'], 'x'],
    ['event: message\rdata: c\r\r', ['event: message\rdata: c'], ''],
  ])('splitEvents(%j)', (text, events, rest) => expect(splitEvents(text)).toEqual({ events, rest }));

  it.each([
    ['event: message\ndata: {"jsonrpc":"2.0","id":3,"result":{}}', ['3']],
    ['data: {"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}}', ['"a"']],
    ['data: [{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"notifications/x"}]', ['1']],
    // A server-to-client request is not an answer; nor is a notification or another event type.
    ['data: {"jsonrpc":"2.0","id":9,"method":"sampling/createMessage"}', []],
    ['data: {"jsonrpc":"2.0","method":"notifications/message"}', []],
    ['event: endpoint\ndata: /messages?sessionId=1', []],
    ['event: message\ndata: not json', []],
    [': keep-alive', []],
  ])('responseIds(%j)', (ev, ids) => expect(responseIds(ev)).toEqual(ids));

  it('messageIds finds requests (method and id), not notifications', () => {
    expect(messageIds('{"jsonrpc":"2.0","id":7,"method":"tools/call"}', 'request')).toEqual(['7']);
    expect(messageIds('[{"jsonrpc":"2.0","id":"x","method":"a"},{"jsonrpc":"2.0","method":"n"}]', 'request')).toEqual(['"x"']);
    expect(messageIds('{"jsonrpc":"2.0","id":7,"result":{}}', 'request')).toEqual([]);
    expect(messageIds('{', 'request')).toEqual([]);
  });

  it('the watcher passes bytes unchanged and sees answers split across chunks', async () => {
    const seen: string[] = [];
    const chunks = ['event: endpoint\ndata: /m?s=1\n\n', 'event: message\ndata: {"jsonrpc":"2.0",', '"id":4,"result":{}}\r\n', '\r\n: ping\n\n'];
    let out = '';
    await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), responseWatcher(() => true, (id) => seen.push(id)), async (src: AsyncIterable<Buffer>) => {
      for await (const b of src) out += b.toString();
    });
    expect(out).toBe(chunks.join(''));
    expect(seen).toEqual(['4']);
  });
});

describe('LegacyCalls', () => {
  const counter = () => {
    let n = 0;
    return { track: () => (n++, () => void n--), n: () => n };
  };

  it('counts a call from its POST until its answer; nothing for a stream never opened', () => {
    const c = counter();
    const l = new LegacyCalls();
    l.sent('k', ['1'], c.track);
    expect(c.n()).toBe(0);
    l.open('k');
    l.sent('k', ['1', '2'], c.track);
    expect(c.n()).toBe(2);
    l.answered('k', '1');
    l.answered('k', '1');
    l.answered('other', '2');
    expect(c.n()).toBe(1);
    l.answered('k', '2');
    expect(c.n()).toBe(0);
  });

  it('un-counts a POST that was not accepted, and everything when the stream closes', () => {
    const c = counter();
    const l = new LegacyCalls();
    l.open('k');
    const undo = l.sent('k', ['1'], c.track);
    l.sent('k', ['2'], c.track);
    undo();
    undo();
    expect(c.n()).toBe(1);
    l.closed('k');
    expect(c.n()).toBe(0);
    expect(l.pending('k')).toBe(0);
  });

  it('a reused id ends the older count; a lost answer ends at the cap', () => {
    vi.useFakeTimers();
    try {
      const c = counter();
      const l = new LegacyCalls({ capMs: 1_000 });
      l.open('k');
      l.sent('k', ['1'], c.track);
      l.sent('k', ['1'], c.track);
      expect(c.n()).toBe(1);
      vi.advanceTimersByTime(1_001);
      expect(c.n()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
