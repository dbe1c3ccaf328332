import { describe, expect, it } from 'vitest';
import {
  applyAnnounce,
  admitConnection,
  applyRelease,
  checkAccess,
  CONNECTION_LIMITS,
  listenerUidFromProcNet,
  peerUidsFromProcNet,
  upstreamPathAllowed,
  forwardRequestHeaders,
  forwardResponseHeaders,
  holdDecision,
  HOLD_MS,
  jsonRpcError,
  parseRoute,
  rewriteEndpointEvent,
  upstreamAction,
  upstreamTarget,
  type HoldState,
} from '../../src/broker/endpoint/policy.js';
import { rewriteFirst } from '../../src/broker/endpoint/sse.js';
import { RETIRED_GRACE_MS, RouteTable } from '../../src/broker/endpoint/routes.js';
import { mustWait } from '../../src/broker/headers.js';
import { sameButRoute, swapRoute } from '../../src/broker/reroute.js';

describe('parseRoute', () => {
  it.each([
    ['/s3cr3t_-AB/certorix', { secret: 's3cr3t_-AB', name: 'certorix', upstreamPath: null }],
    ['/s3cr3t/certorix/', { secret: 's3cr3t', name: 'certorix', upstreamPath: null }],
    ['/s3cr3t/my%20server', { secret: 's3cr3t', name: 'my server', upstreamPath: null }],
    ['/s3cr3t/certorix/_/messages', { secret: 's3cr3t', name: 'certorix', upstreamPath: '/messages' }],
    ['/s3cr3t/certorix/_/a/b', { secret: 's3cr3t', name: 'certorix', upstreamPath: '/a/b' }],
    ['/', null],
    ['/s3cr3t', null],
    ['/s3cr3t/', null],
    ['/s3cr3t/certorix/other', null],
    ['/bad$secret/certorix', null],
    ['/s3cr3t/%E0%A4%A', null],
    ['//certorix', null],
  ])('%s', (p, want) => expect(parseRoute(p)).toEqual(want));
});

describe('checkAccess', () => {
  const port = 47_001;
  it.each([
    [{ host: '127.0.0.1:47001' }, true],
    [{ host: 'LOCALHOST:47001' }, true],
    [{ host: '127.0.0.1:47001', origin: 'http://127.0.0.1:47001' }, true],
    [{ host: '127.0.0.1:47001', origin: 'http://localhost:47001' }, true],
    // Another loopback port is another origin (a dev server, another user's listener).
    [{ host: '127.0.0.1:47001', origin: 'http://localhost:3000' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'http://127.0.0.1:47002' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'https://127.0.0.1:47001' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'http://[::1]:47001' }, 403],
    [{ host: undefined }, 403],
    [{ host: '127.0.0.1' }, 403],
    [{ host: '127.0.0.1:80' }, 403],
    [{ host: 'evil.example:47001' }, 403],
    [{ host: '[::1]:47001' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'https://evil.example' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'null' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'http://localhost.evil.example' }, 403],
    [{ host: '127.0.0.1:47001', origin: 'file://' }, 403],
  ])('%j', (h, want) => {
    const d = checkAccess({ host: h.host, origin: (h as { origin?: string }).origin, port });
    expect(d.ok ? true : d.status).toBe(want);
  });
});

describe('upstreamTarget', () => {
  it.each([
    ['https://mcp.certorix.com/mcp', '/s/n', '', 'https://mcp.certorix.com/mcp'],
    ['https://mcp.certorix.com/mcp?tenant=a', '/s/n', '?x=1', 'https://mcp.certorix.com/mcp?tenant=a&x=1'],
    ['https://mcp.certorix.com/sse', '/s/n/_/messages', '?sessionId=abc', 'https://mcp.certorix.com/messages?sessionId=abc'],
    // A path never leaves the upstream's origin, whatever it spells.
    ['https://mcp.certorix.com/sse', '/s/n/_//evil.example/x', '', 'https://mcp.certorix.com//evil.example/x'],
    ['https://mcp.certorix.com/sse', '/s/n/_/../../x', '', 'https://mcp.certorix.com/x'],
  ])('%s + %s%s', (up, p, q, want) => {
    const r = parseRoute(p);
    expect(r).not.toBeNull();
    expect(upstreamTarget(up, r!, q).href).toBe(want);
  });
});

describe('forwardRequestHeaders', () => {
  it('keeps Mcp-* and content headers, drops hop-by-hop and local ones, replaces Authorization', () => {
    const out = forwardRequestHeaders(
      {
        host: '127.0.0.1:47001',
        authorization: 'Bearer client-supplied',
        'mcp-session-id': 'sess-1',
        'mcp-protocol-version': '2025-06-18',
        'mcp-custom-thing': 'x',
        'last-event-id': '42',
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        'content-length': '12',
        'accept-encoding': 'gzip, br',
        connection: 'keep-alive, x-private',
        'x-private': 'hop',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic abc',
        cookie: 'a=b',
        origin: 'http://localhost:3000',
        referer: 'http://localhost:3000/x',
        'user-agent': 'claude-desktop/1.0',
      },
      'LIVE',
    );
    expect(out).toEqual({
      authorization: 'Bearer LIVE',
      'mcp-session-id': 'sess-1',
      'mcp-protocol-version': '2025-06-18',
      'mcp-custom-thing': 'x',
      'last-event-id': '42',
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'accept-encoding': 'identity',
      'user-agent': 'claude-desktop/1.0',
    });
  });
});

describe('forwardResponseHeaders', () => {
  it.each([
    [
      { 'content-type': 'text/event-stream', 'mcp-session-id': 's', 'content-length': '10', connection: 'close', 'transfer-encoding': 'chunked' },
      { 'content-type': 'text/event-stream', 'mcp-session-id': 's', 'x-accel-buffering': 'no', 'cache-control': 'no-cache, no-transform' },
    ],
    [
      { 'content-type': 'application/json', 'content-length': '10', 'www-authenticate': 'Bearer x', 'set-cookie': ['a=b'], location: 'https://x', 'keep-alive': 'timeout=5' },
      { 'content-type': 'application/json', 'content-length': '10' },
    ],
    [{ 'content-type': 'Text/Event-Stream; charset=utf-8' }, { 'content-type': 'Text/Event-Stream; charset=utf-8', 'x-accel-buffering': 'no', 'cache-control': 'no-cache, no-transform' }],
  ])('%j', (inp, want) => expect(forwardResponseHeaders(inp)).toEqual(want));
});

describe('upstreamAction', () => {
  it.each([
    [200, 0, 'pass'],
    [202, 1, 'pass'],
    [401, 0, 'retry'],
    [401, 1, 'fail-auth'],
    [403, 0, 'pass'],
    [404, 0, 'pass'],
    [301, 0, 'fail-redirect'],
    [307, 0, 'fail-redirect'],
    [308, 1, 'fail-redirect'],
    [304, 0, 'pass'],
    [500, 0, 'pass'],
  ])('%i attempt %i -> %s', (status, attempt, want) => expect(upstreamAction(status, attempt)).toBe(want));
});

describe('jsonRpcError', () => {
  it.each([
    [Buffer.from('{"jsonrpc":"2.0","id":7,"method":"tools/call"}'), 7],
    [Buffer.from('{"jsonrpc":"2.0","id":"a","method":"x"}'), 'a'],
    [Buffer.from('[{"jsonrpc":"2.0","id":1}]'), null],
    [Buffer.from('not json'), null],
    [null, null],
  ])('id from %s', (body, id) => {
    const e = JSON.parse(jsonRpcError(body, 'm')) as { id: unknown; error: { code: number; message: string } };
    expect(e.id).toBe(id);
    expect(e.error.message).toBe('m');
  });
});

describe('legacy SSE endpoint event', () => {
  const up = 'https://mcp.certorix.com/sse';
  const local = 'http://127.0.0.1:47001/sec/certorix';
  it.each([
    ['/messages?sessionId=abc', `${local}/_/messages?sessionId=abc`],
    ['messages?sessionId=abc', `${local}/_/messages?sessionId=abc`],
    ['https://mcp.certorix.com/messages?sessionId=abc', `${local}/_/messages?sessionId=abc`],
    ['https://evil.example/messages', null],
    ['//evil.example/messages', null],
  ])('%s', (data, want) => expect(rewriteEndpointEvent(data, up, local)).toBe(want));

  it.each([
    ['event: endpoint\ndata: /messages?sessionId=1\n\n', 'event: endpoint\ndata: L(/messages?sessionId=1)\n\n'],
    ['event: endpoint\r\nid: 3\r\ndata: /m\r\n\r\n', 'event: endpoint\nid: 3\ndata: L(/m)\n\n'],
    ['event: message\ndata: {"a":1}\n\n', 'event: message\ndata: {"a":1}\n\n'],
    ['data: hello\n\n', 'data: hello\n\n'],
  ])('first event %j', (ev, want) => expect(rewriteFirst(ev, (d) => `L(${d})`)).toBe(want));
  it('refuses when the rewrite refuses', () => expect(rewriteFirst('event: endpoint\ndata: x\n\n', () => null)).toBeNull());
});

describe('rotation hold', () => {
  it('holds announced slots until stored, bounded, and only its own generation releases', () => {
    const s: HoldState = { held: new Map() };
    applyAnnounce(s, ['a', 'b'], 5, false, 1000);
    expect(holdDecision(s, 'a', 1000)).toEqual({ hold: true, ms: HOLD_MS.rotate });
    expect(holdDecision(s, 'c', 1000)).toEqual({ hold: false });
    expect(applyRelease(s, ['a'], 4)).toEqual([]); // an older generation's release does not end this hold
    expect(holdDecision(s, 'a', 2000).hold).toBe(true);
    expect(applyRelease(s, ['a'], 5)).toEqual(['a']);
    expect(holdDecision(s, 'a', 2000)).toEqual({ hold: false });
    expect(holdDecision(s, 'b', 1000 + HOLD_MS.rotate)).toEqual({ hold: false }); // bound reached
  });
  it('revoke-now holds a few seconds at most', () => {
    const s: HoldState = { held: new Map() };
    applyAnnounce(s, ['a'], 1, true, 0);
    const d = holdDecision(s, 'a', 0);
    expect(d.hold && d.ms).toBeLessThanOrEqual(5_000);
  });
});

describe('headers helper: mustWait', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  const sig = (o: Partial<{ phase: string; slots: string[]; at: string }>) =>
    ({ generation: 1, phase: 'announce', slots: ['certorix-1'], revoke: false, at: new Date(now - 1000).toISOString(), ...o }) as Parameters<typeof mustWait>[0];
  it.each([
    [sig({}), true],
    [sig({ phase: 'stored' }), false],
    [sig({ phase: 'aborted' }), false],
    [sig({ slots: ['certorix-2'] }), false],
    [sig({ at: new Date(now - 10 * 60_000).toISOString() }), false],
    [null, false],
  ])('%j', (s, want) => expect(mustWait(s, 'certorix-1', now)).toBe(want));
});

describe('RouteTable', () => {
  it('finds entries by secret, reloads when stale, and misses unknown secrets', () => {
    let t = 0;
    let rows = [{ id: 1, routeSecret: 'aaa', name: 'one', slot: 's1', upstreamUrl: 'https://x/mcp' }];
    let loads = 0;
    const table = new RouteTable(
      () => {
        loads++;
        return rows;
      },
      { ttlMs: 1000, now: () => t },
    );
    expect(table.lookup('aaa')?.name).toBe('one');
    expect(table.lookup('aab')).toBeNull();
    expect(table.lookup('')).toBeNull();
    expect(loads).toBe(1);
    rows = [{ id: 2, routeSecret: 'bbb', name: 'two', slot: 's2', upstreamUrl: 'https://x/mcp' }];
    t = 999;
    expect(table.lookup('bbb')).toBeNull();
    t = 1000;
    expect(table.lookup('bbb')?.name).toBe('two');
    expect(table.lookup('aaa')).toBeNull(); // removed by "broker disable"
    expect(loads).toBe(2);
  });

  it('a renewed secret (same entry, new secret) is marked retired for a while; the new one is current', () => {
    let t = 0;
    let rows = [{ id: 7, routeSecret: 'old', name: 'one', slot: 's1', upstreamUrl: 'https://x/mcp' }];
    const table = new RouteTable(() => rows, { ttlMs: 1000, now: () => t });
    expect(table.lookup('old')?.retired).toBeUndefined();
    rows = [{ id: 7, routeSecret: 'new', name: 'one', slot: 's1', upstreamUrl: 'https://x/mcp' }];
    table.invalidate();
    expect(table.lookup('new')).toMatchObject({ id: 7, name: 'one' });
    expect(table.lookup('new')?.retired).toBeUndefined();
    expect(table.lookup('old')).toMatchObject({ id: 7, retired: true });
    t = RETIRED_GRACE_MS + 1;
    expect(table.lookup('old')).toBeNull();
  });

  it('a miss reloads at once when the database changed (another process committed), not otherwise', () => {
    let version = 1;
    let loads = 0;
    let rows = [{ id: 1, routeSecret: 'aaa', name: 'one', slot: 's1', upstreamUrl: 'https://x/mcp' }];
    const table = new RouteTable(
      () => {
        loads++;
        return rows;
      },
      { ttlMs: 60_000, now: () => 0, version: () => version },
    );
    expect(table.lookup('aaa')?.name).toBe('one');
    expect(table.lookup('bbb')).toBeNull();
    expect(loads).toBe(1); // unchanged database: a wrong secret costs no reload
    rows = [...rows, { id: 2, routeSecret: 'bbb', name: 'two', slot: 's1', upstreamUrl: 'https://x/mcp' }];
    version = 2; // broker enable committed the new row
    expect(table.lookup('bbb')?.name).toBe('two');
    expect(loads).toBe(2);
  });
});

// /proc/net/tcp as Linux prints it: the endpoint listens on 127.0.0.1:8080 (1F90) as uid 1000.
const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11 1 0 100 0 0 10 0',
  // the client sockets: port 50000 (C350) of uid 65534, port 50001 (C351) of uid 1000
  '   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534        0 12 1 0 20 4 30 10 -1',
  '   2: 0100007F:C351 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 13 1 0 20 4 30 10 -1',
  // the accepted (server) side of the same connections: owned by the daemon, not the peer
  '   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 14 1 0 20 4 30 10 -1',
  // a connection from port 50002 to another host's port 8080: not ours
  '   4: 0A00000F:C352 5DB8D822:1F90 01 00000000:00000000 00:00000000 00000000  4242        0 15 1 0 20 4 30 10 -1',
  // another user's listener on 127.0.0.1:9090 (2382)
  '   5: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 16 1 0 100 0 0 10 0',
].join('\n');
const TCP6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0000000000000000FFFF00000100007F:C353 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000   777        0 17 1 0 20 4 30 10 -1',
  '   1: 00000000000000000000000000000000:2383 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   888        0 18 1 0 100 0 0 10 0',
].join('\n');

describe('peer uids from /proc/net/tcp', () => {
  it('names the uid of each client socket connected to the endpoint, by its port (v4 and v4-mapped v6), nothing else', () => {
    expect([...peerUidsFromProcNet(TCP, 8080)]).toEqual([
      [50000, 65534],
      [50001, 1000],
    ]);
    expect([...peerUidsFromProcNet(TCP6, 8080)]).toEqual([[50003, 777]]);
    expect(peerUidsFromProcNet(TCP, 8081).size).toBe(0);
    expect(peerUidsFromProcNet('', 8080).size).toBe(0);
  });
  it('names the uid listening on a port (loopback or wildcard), or null', () => {
    expect(listenerUidFromProcNet(TCP, 8080)).toBe(1000);
    expect(listenerUidFromProcNet(TCP, 9090)).toBe(65534);
    expect(listenerUidFromProcNet(TCP6, 9091)).toBe(888);
    expect(listenerUidFromProcNet(TCP, 50000)).toBeNull(); // a connected socket, not a listener
    expect(listenerUidFromProcNet(TCP, 1234)).toBeNull();
  });
});

describe('admitConnection', () => {
  const L = CONNECTION_LIMITS;
  it.each([
    [{ peerUid: 1000, total: 0, perPeer: 0 }, 'ok'],
    [{ peerUid: 65534, total: 0, perPeer: 0 }, 'other-user'],
    [{ peerUid: null, total: 0, perPeer: 0 }, 'peer-unknown'],
    [{ peerUid: undefined, total: 0, perPeer: 0 }, 'ok'], // no uid to check (macOS, Windows): the caps only
    [{ peerUid: undefined, total: L.total, perPeer: 0 }, 'too-many'],
    [{ peerUid: 1000, total: 10, perPeer: L.perPeer }, 'too-many-peer'],
  ] as const)('%j -> %s', (a, want) => {
    const d = admitConnection({ ...a, ownUid: 1000, limits: L });
    expect(d.ok ? 'ok' : d.reason).toBe(want);
  });
});

describe('upstreamPathAllowed', () => {
  it("the entry's own URL always; another path only when announced", () => {
    expect(upstreamPathAllowed({ secret: 's', name: 'n', upstreamPath: null }, false)).toBe(true);
    expect(upstreamPathAllowed({ secret: 's', name: 'n', upstreamPath: '/v1/token/regenerate' }, false)).toBe(false);
    expect(upstreamPathAllowed({ secret: 's', name: 'n', upstreamPath: '/messages' }, true)).toBe(true);
  });
});

describe('route renewal text', () => {
  const entry = '{\n      "url": "http://127.0.0.1:41000/OLDsecret_-1/certorix"\n    }';
  it('swaps the port and secret of the one URL carrying the old secret, byte for byte', () => {
    expect(swapRoute(entry, 'OLDsecret_-1', 42000, 'NEWsecret')).toBe('{\n      "url": "http://127.0.0.1:42000/NEWsecret/certorix"\n    }');
    expect(swapRoute(entry, 'other', 42000, 'NEWsecret')).toBeNull();
    expect(swapRoute(entry + entry, 'OLDsecret_-1', 42000, 'NEWsecret')).toBeNull();
  });
  it('tells an entry that differs only in its endpoint URL from one edited otherwise', () => {
    expect(sameButRoute(entry, swapRoute(entry, 'OLDsecret_-1', 42000, 'X')!)).toBe(true);
    expect(sameButRoute(entry, entry.replace('certorix', 'other'))).toBe(false);
  });
});
