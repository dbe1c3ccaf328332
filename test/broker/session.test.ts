import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/broker/exec/message.js';
import { RelaySession, type SessionAction, type SessionEvent } from '../../src/broker/exec/session.js';

// Message builders: what a client and a server put on a line.
const req = (id: number | string, method: string, params: Record<string, unknown> = {}) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
const note = (method: string, params: Record<string, unknown> = {}) => JSON.stringify({ jsonrpc: '2.0', method, params });
const res = (id: number | string, result: Record<string, unknown> = {}) => JSON.stringify({ jsonrpc: '2.0', id, result });

const client = (line: string): SessionEvent => ({ type: 'client', line, msg: parseMessage(line) });
const child = (n: number, line: string): SessionEvent => ({ type: 'child', child: n, line, msg: parseMessage(line) });
const INIT = req(0, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } });
const INIT_OK = res(0, { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 's', version: '1' } });

/** Runs events through a fresh session; returns every action, and those of the last event. */
function run(events: SessionEvent[], s = new RelaySession()): { s: RelaySession; all: SessionAction[]; last: SessionAction[] } {
  const all: SessionAction[] = [];
  let last: SessionAction[] = [];
  for (const e of events) {
    last = s.handle(e);
    all.push(...last);
  }
  return { s, all, last };
}

const toChild = (acts: SessionAction[], n: number) => acts.filter((a): a is Extract<SessionAction, { type: 'to-child' }> => a.type === 'to-child' && a.child === n).map((a) => JSON.parse(a.line) as Record<string, unknown>);
const toClient = (acts: SessionAction[]) => acts.filter((a): a is Extract<SessionAction, { type: 'to-client' }> => a.type === 'to-client').map((a) => JSON.parse(a.line) as Record<string, unknown>);

/** A session with child 1 initialized, the client's initialized sent. */
const started: SessionEvent[] = [{ type: 'start' }, client(INIT), child(1, INIT_OK), client(note('notifications/initialized'))];

describe('relay session: plain relaying', () => {
  it.each<[string, SessionEvent[], (acts: SessionAction[]) => void]>([
    ['start spawns child 1', [{ type: 'start' }], (a) => expect(a).toEqual([{ type: 'spawn', child: 1 }])],
    ['a request goes to the child unchanged', [...started, client(req(5, 'tools/call', { name: 'x' }))], (a) => expect(a).toEqual([{ type: 'to-child', child: 1, line: req(5, 'tools/call', { name: 'x' }) }])],
    ['an unknown method passes through', [...started, client(req(6, 'vendor/frobnicate'))], (a) => expect(toChild(a, 1)[0]?.method).toBe('vendor/frobnicate')],
    ['a response goes to the client unchanged', [...started, client(req(5, 'tools/list')), child(1, res(5, { tools: [] }))], (a) => expect(a).toEqual([{ type: 'to-client', line: res(5, { tools: [] }) }])],
    ['a server notification goes to the client', [...started, child(1, note('notifications/tools/list_changed'))], (a) => expect(toClient(a)[0]?.method).toBe('notifications/tools/list_changed')],
    ['a garbage line passes through', [...started, client('not json')], (a) => expect(a).toEqual([{ type: 'to-child', child: 1, line: 'not json' }])],
    ['a server request gets a wrapper id', [...started, child(1, req('srv-1', 'sampling/createMessage'))], (a) => expect(toClient(a)[0]).toMatchObject({ id: 1, method: 'sampling/createMessage' })],
    ['the answer goes back under the server id', [...started, child(1, req('srv-1', 'sampling/createMessage')), client(res(1, { ok: true }))], (a) => expect(toChild(a, 1)[0]).toMatchObject({ id: 'srv-1', result: { ok: true } })],
    ['client end closes the child, then exits', [...started, { type: 'client-end' }, { type: 'child-exit', child: 1, code: 0 }], (a) => expect(a).toContainEqual({ type: 'exit', code: 0 })],
    ['a server that exits on its own ends the wrapper with its code', [...started, { type: 'child-exit', child: 1, code: 3 }], (a) => expect(a).toContainEqual({ type: 'exit', code: 3 })],
  ])('%s', (_n, events, check) => {
    check(run(events).last);
  });
});

describe('relay session: rotation', () => {
  it('holds new requests at announce, lets in-flight ones finish, swaps at stored', () => {
    const { s, all } = run([...started, client(req(1, 'tools/call', { name: 'slow' })), { type: 'signal', phase: 'announce' }, client(req(2, 'tools/call', { name: 'a' })), client(req(3, 'tools/list'))]);
    expect(s.holding).toBe(true);
    expect(s.heldCount).toBe(2);
    expect(toChild(all, 1).map((m) => m.method)).toEqual(['initialize', 'notifications/initialized', 'tools/call']); // nothing held went out
    // The in-flight call still answers through the old child.
    let a = s.handle(child(1, res(1, { content: [] })));
    expect(toClient(a)).toEqual([{ jsonrpc: '2.0', id: 1, result: { content: [] } }]);
    a = s.handle({ type: 'signal', phase: 'stored' });
    expect(a).toContainEqual({ type: 'spawn', child: 2 });
    const replay = toChild(a, 2);
    expect(replay).toHaveLength(1);
    expect(replay[0]).toMatchObject({ method: 'initialize', params: { protocolVersion: '2025-06-18' } });
    expect(String(replay[0]!.id)).toMatch(/^mcp-token-rotator-relay-/);
    // The replayed initialize's answer is the wrapper's, not the client's.
    a = s.handle(child(2, res(replay[0]!.id as string, { protocolVersion: '2025-06-18', capabilities: {} })));
    expect(toClient(a)).toEqual([]);
    const sent = toChild(a, 2);
    expect(sent.map((m) => m.method ?? m.id)).toEqual(['notifications/initialized', 'tools/call', 'tools/list']);
    expect(sent.map((m) => m.id)).toEqual([undefined, 2, 3]);
    expect(a).toContainEqual({ type: 'end-child', child: 1 });
    expect(s.current).toBe(2);
    expect(s.holding).toBe(false);
  });

  it('never sends a call that reached the old child to the new one; the old child drains, bounded', () => {
    const { s } = run([...started, client(req(7, 'tools/call', { name: 'slow' })), { type: 'signal', phase: 'announce' }]);
    let a = s.handle({ type: 'signal', phase: 'stored' });
    const initId = toChild(a, 2)[0]!.id as string;
    a = s.handle(child(2, res(initId, { protocolVersion: '2025-06-18' })));
    expect(toChild(a, 2).some((m) => m.id === 7)).toBe(false);
    expect(a).toContainEqual({ type: 'set-timer', name: 'drain', child: 1, ms: s.opts.drainMs });
    expect(a.some((x) => x.type === 'end-child' && x.child === 1)).toBe(false);
    // Drains when in-flight reaches zero (not after a fixed delay).
    a = s.handle(child(1, res(7, {})));
    expect(toClient(a)).toHaveLength(1);
    expect(a).toContainEqual({ type: 'end-child', child: 1 });
  });

  it('a drain that takes too long answers the call with an error and ends the old child', () => {
    const { s } = run([...started, client(req(7, 'tools/call')), { type: 'signal', phase: 'stored' }, child(2, res('mcp-token-rotator-relay-1', { protocolVersion: '2025-06-18' }))]);
    const a = s.handle({ type: 'timer', name: 'drain', child: 1 });
    expect(toClient(a)).toMatchObject([{ id: 7, error: { code: -32603 } }]);
    expect(a).toContainEqual({ type: 'end-child', child: 1 });
    // A late answer from the old child after that is not relayed twice.
    expect(s.inflight(1)).toBe(0);
    expect(s.handle(child(1, res(7, {})))).toEqual([]);
  });

  it('re-applies logging level and resource subscriptions under private ids', () => {
    const { s } = run([
      ...started,
      client(req(1, 'logging/setLevel', { level: 'debug' })),
      child(1, res(1)),
      client(req(2, 'resources/subscribe', { uri: 'a://x' })),
      child(1, res(2)),
      client(req(3, 'resources/subscribe', { uri: 'a://y' })),
      child(1, res(3)),
      client(req(4, 'resources/unsubscribe', { uri: 'a://y' })),
      child(1, res(4)),
      { type: 'signal', phase: 'stored' },
    ]);
    const initId = 'mcp-token-rotator-relay-1';
    const a = s.handle(child(2, res(initId, { protocolVersion: '2025-06-18' })));
    const sent = toChild(a, 2);
    expect(sent.map((m) => m.method)).toEqual(['notifications/initialized', 'logging/setLevel', 'resources/subscribe']);
    expect(sent[2]).toMatchObject({ params: { uri: 'a://x' } });
    // Their answers are swallowed.
    expect(toClient(s.handle(child(2, res(String(sent[1]!.id)))))).toEqual([]);
  });

  it('remaps server-to-client request ids so the old and new child cannot collide', () => {
    const { s } = run([...started, child(1, req(1, 'elicitation/create')), { type: 'signal', phase: 'stored' }]);
    s.handle(child(2, res('mcp-token-rotator-relay-1', { protocolVersion: '2025-06-18' })));
    const a = s.handle(child(2, req(1, 'roots/list')));
    expect(toClient(a)[0]).toMatchObject({ id: 2, method: 'roots/list' });
    // The client answers both; each goes to the child that asked, under its own id 1.
    expect(s.handle(client(res(1, { action: 'cancel' })))).toEqual([]); // child 1 has ended: dropped
    expect(toChild(s.handle(client(res(2, { roots: [] }))), 2)).toEqual([{ jsonrpc: '2.0', id: 1, result: { roots: [] } }]);
  });

  it.each<[string, SessionEvent, RegExp]>([
    ['another protocol version', child(2, res('mcp-token-rotator-relay-1', { protocolVersion: '2024-11-05' })), /protocol 2024-11-05/],
    ['the new child exits during start-up', { type: 'child-exit', child: 2, code: 1 }, /exited with code 1/],
    ['the token cannot be read', { type: 'spawn-failed', child: 2, reason: 'store locked' }, /store locked/],
    ['the handshake times out', { type: 'timer', name: 'ready' }, /did not start/],
  ])('a failed swap (%s) keeps the session and answers held requests with an error', (_n, failure, reason) => {
    const { s } = run([...started, { type: 'signal', phase: 'announce' }, client(req(9, 'tools/call')), { type: 'signal', phase: 'stored' }]);
    const a = s.handle(failure);
    const errs = toClient(a);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({ id: 9, error: { code: -32603 } });
    expect(String((errs[0]!.error as { message: string }).message)).toMatch(reason);
    expect(a.some((x) => x.type === 'exit')).toBe(false);
    expect(s.current).toBe(1);
    // The session goes on with the old child.
    expect(toChild(s.handle(client(req(10, 'tools/list'))), 1)).toHaveLength(1);
  });

  it('aborted releases held requests to the running child; a hold timeout does too', () => {
    for (const end of [{ type: 'signal', phase: 'aborted' }, { type: 'timer', name: 'hold' }] as SessionEvent[]) {
      const { s } = run([...started, { type: 'signal', phase: 'announce' }, client(req(4, 'tools/call'))]);
      const a = s.handle(end);
      expect(toChild(a, 1).map((m) => m.id)).toEqual([4]);
      expect(s.holding).toBe(false);
    }
  });

  it('reports drained at announce when nothing is in flight, else when the last call answers', () => {
    expect(run([...started, { type: 'signal', phase: 'announce' }]).last).toContainEqual({ type: 'drained' });
    const { s, last } = run([...started, client(req(1, 'tools/call')), client(req(2, 'tools/call')), { type: 'signal', phase: 'announce' }]);
    expect(last).not.toContainEqual({ type: 'drained' });
    expect(s.handle(child(1, res(1)))).not.toContainEqual({ type: 'drained' });
    // Held requests do not count: they have not reached any server.
    s.handle(client(req(3, 'tools/call')));
    const a = s.handle(child(1, res(2)));
    expect(a).toContainEqual({ type: 'drained' });
    // Once per announce.
    expect(s.handle(client(note('notifications/progress')))).not.toContainEqual({ type: 'drained' });
  });

  it('a server that dies while draining counts as drained', () => {
    const { s } = run([...started, client(req(1, 'tools/call')), { type: 'signal', phase: 'announce' }]);
    const a = s.handle({ type: 'child-exit', child: 1, code: 1 });
    expect(a).toContainEqual({ type: 'drained' });
    expect(a.some((x) => x.type === 'exit')).toBe(false);
  });

  it('revoke holds for the short time', () => {
    const a = run([...started, { type: 'signal', phase: 'announce', revoke: true }]).last;
    expect(a).toContainEqual({ type: 'set-timer', name: 'hold', ms: 4000 });
  });

  it('a request cancelled while held never runs; one cancelled in flight goes to its child', () => {
    const { s, last } = run([...started, client(req(3, 'tools/call')), { type: 'signal', phase: 'announce' }, client(req(4, 'tools/call')), client(note('notifications/cancelled', { requestId: 4 }))]);
    expect(last).toEqual([]);
    expect(s.heldCount).toBe(0);
    expect(toChild(s.handle(client(note('notifications/cancelled', { requestId: 3 }))), 1)).toHaveLength(1);
  });

  it('a second stored while the new child starts replaces it (it may hold the older token)', () => {
    const { s, last } = run([...started, { type: 'signal', phase: 'stored' }, { type: 'signal', phase: 'stored' }]);
    expect(last).toContainEqual({ type: 'end-child', child: 2 });
    expect(last).toContainEqual({ type: 'spawn', child: 3 });
    expect(toChild(last, 3)[0]).toMatchObject({ method: 'initialize' });
    s.handle(child(3, res('mcp-token-rotator-relay-2', { protocolVersion: '2025-06-18' })));
    expect(s.current).toBe(3);
  });

  it('a rotation before the client initialized: no replay, held requests go to the new child', () => {
    const { s, last } = run([{ type: 'start' }, { type: 'signal', phase: 'announce' }, client(INIT), { type: 'signal', phase: 'stored' }]);
    expect(s.current).toBe(2);
    expect(toChild(last, 2).map((m) => m.method)).toEqual(['initialize']);
    expect(last).toContainEqual({ type: 'end-child', child: 1 });
  });
});

// ---- every state x rotation event
// A state is the events that lead to it; request 50 is held in every state that holds (so
// where it goes is visible), request 7 is in flight at child 1 where the state says so.
// 'ready': the starting child answers its replayed initialize; 'starting-exit': it exits.
type Ev = SessionEvent | 'ready' | 'starting-exit';
const ANNOUNCE: SessionEvent = { type: 'signal', phase: 'announce' };
const STORED: SessionEvent = { type: 'signal', phase: 'stored' };
const STATES: Array<[string, Ev[]]> = [
  ['running', started],
  ['running, a call in flight', [...started, client(req(7, 'tools/call'))]],
  ['held', [...started, ANNOUNCE, client(req(50, 'tools/call'))]],
  ['held, a call in flight', [...started, client(req(7, 'tools/call')), ANNOUNCE, client(req(50, 'tools/call'))]],
  ['swapping', [...started, ANNOUNCE, client(req(50, 'tools/call')), STORED]],
  ['swapping, announced again', [...started, ANNOUNCE, client(req(50, 'tools/call')), STORED, ANNOUNCE]],
  ['taken over, announced again', [...started, ANNOUNCE, client(req(50, 'tools/call')), STORED, ANNOUNCE, 'ready']],
  ['old child draining', [...started, client(req(7, 'tools/call')), STORED, 'ready']],
];

const EVENTS: Array<[string, Ev]> = [
  ['announce', ANNOUNCE],
  ['announce (revoke)', { type: 'signal', phase: 'announce', revoke: true }],
  ['stored', STORED],
  ['aborted', { type: 'signal', phase: 'aborted' }],
  ['hold timeout', { type: 'timer', name: 'hold' }],
  ['ready timeout', { type: 'timer', name: 'ready' }],
  ['new child answers initialize', 'ready'],
  ['new child exits', 'starting-exit'],
  ['client request', client(req(60, 'tools/call'))],
];

interface Outcome {
  holding: boolean;
  current: number;
  starting: number | null;
  spawned: number[];
  ended: number[];
  drained: boolean;
  /** Client tool calls sent to a child by this event: `id@child`. */
  sent: string[];
  /** Client requests answered with an error by this event. */
  errors: number[];
  /** The hold timer set by this event (ms). */
  hold: number | null;
}

function feed(s: RelaySession, evs: Ev[], all: SessionAction[]): SessionAction[] {
  let last: SessionAction[] = [];
  for (const e of evs) {
    let ev: SessionEvent | null;
    if (e === 'ready') {
      const n = s.starting;
      const sent = n !== null ? toChild(all, n).filter((m) => m.method === 'initialize') : [];
      ev = n !== null && sent.length ? child(n, res(String(sent[sent.length - 1]!.id), { protocolVersion: '2025-06-18' })) : null;
    } else if (e === 'starting-exit') {
      ev = s.starting !== null ? { type: 'child-exit', child: s.starting, code: 1 } : null;
    } else ev = e;
    last = ev ? s.handle(ev) : [];
    all.push(...last);
  }
  return last;
}

function outcome(s: RelaySession, a: SessionAction[]): Outcome {
  const hold = a.flatMap((x) => (x.type === 'set-timer' && x.name === 'hold' ? [x.ms] : []));
  return {
    holding: s.holding,
    current: s.current,
    starting: s.starting,
    spawned: a.flatMap((x) => (x.type === 'spawn' ? [x.child] : [])),
    ended: a.flatMap((x) => (x.type === 'end-child' ? [x.child] : [])),
    drained: a.some((x) => x.type === 'drained'),
    sent: a
      .flatMap((x) => (x.type === 'to-child' ? [{ c: x.child, m: JSON.parse(x.line) as { id?: unknown; method?: string } }] : []))
      .filter((x) => typeof x.m.id === 'number' && x.m.method === 'tools/call')
      .map((x) => `${String(x.m.id)}@${x.c}`),
    errors: toClient(a).filter((m) => m.error !== undefined).map((m) => m.id as number),
    hold: hold.length ? hold[hold.length - 1]! : null,
  };
}

// Expected outcome per state (rows) and event (in EVENTS order).
const o = (holding: boolean, current: number, starting: number | null, more: Partial<Outcome> = {}): Outcome => ({ holding, current, starting, spawned: [], ended: [], drained: false, sent: [], errors: [], hold: null, ...more });
const EXPECTED: Record<string, Outcome[]> = {
  running: [
    o(true, 1, null, { drained: true, hold: 20_000 }),
    o(true, 1, null, { drained: true, hold: 4_000 }),
    o(true, 1, 2, { spawned: [2] }),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null, { sent: ['60@1'] }),
  ],
  'running, a call in flight': [
    o(true, 1, null, { hold: 20_000 }), // drained waits for call 7
    o(true, 1, null, { hold: 4_000 }),
    o(true, 1, 2, { spawned: [2] }),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null),
    o(false, 1, null, { sent: ['60@1'] }),
  ],
  held: [
    // A second announce restarts the hold and reports drained for its generation: never dropped.
    o(true, 1, null, { drained: true, hold: 20_000 }),
    o(true, 1, null, { drained: true, hold: 4_000 }),
    o(true, 1, 2, { spawned: [2] }),
    o(false, 1, null, { sent: ['50@1'] }),
    o(false, 1, null, { sent: ['50@1'] }),
    o(true, 1, null),
    o(true, 1, null),
    o(true, 1, null),
    o(true, 1, null),
  ],
  'held, a call in flight': [
    o(true, 1, null, { hold: 20_000 }),
    o(true, 1, null, { hold: 4_000 }),
    o(true, 1, 2, { spawned: [2] }),
    o(false, 1, null, { sent: ['50@1'] }),
    o(false, 1, null, { sent: ['50@1'] }),
    o(true, 1, null),
    o(true, 1, null),
    o(true, 1, null),
    o(true, 1, null),
  ],
  swapping: [
    // Announce during a swap: remembered, drained at once (nothing in flight can use the announced token).
    o(true, 1, 2, { drained: true, hold: 20_000 }),
    o(true, 1, 2, { drained: true, hold: 4_000 }),
    o(true, 1, 3, { spawned: [3], ended: [2] }),
    o(true, 1, 2),
    o(true, 1, 2),
    o(false, 1, null, { ended: [2], errors: [50] }),
    o(false, 2, null, { ended: [1], sent: ['50@2'] }),
    o(false, 1, null, { errors: [50] }),
    o(true, 1, 2),
  ],
  'swapping, announced again': [
    o(true, 1, 2, { drained: true, hold: 20_000 }),
    o(true, 1, 2, { drained: true, hold: 4_000 }),
    o(true, 1, 3, { spawned: [3], ended: [2] }),
    o(true, 1, 2), // aborted: the swap goes on, and releases at take-over
    o(true, 1, 2),
    o(true, 1, null, { ended: [2] }), // failed swap: requests wait for the announced rotation's stored
    o(true, 2, null, { ended: [1] }), // took over, still held for the second rotation
    o(true, 1, null),
    o(true, 1, 2),
  ],
  'taken over, announced again': [
    o(true, 2, null, { drained: true, hold: 20_000 }),
    o(true, 2, null, { drained: true, hold: 4_000 }),
    o(true, 2, 3, { spawned: [3] }),
    o(false, 2, null, { sent: ['50@2'] }),
    o(false, 2, null, { sent: ['50@2'] }),
    o(true, 2, null),
    o(true, 2, null),
    o(true, 2, null),
    o(true, 2, null),
  ],
  'old child draining': [
    // Call 7 at the old child does not count: its token is already replaced.
    o(true, 2, null, { drained: true, hold: 20_000 }),
    o(true, 2, null, { drained: true, hold: 4_000 }),
    o(true, 2, 3, { spawned: [3] }),
    o(false, 2, null),
    o(false, 2, null),
    o(false, 2, null),
    o(false, 2, null),
    o(false, 2, null),
    o(false, 2, null, { sent: ['60@2'] }),
  ],
};

describe('relay session: every state x rotation event', () => {
  const rows = STATES.flatMap(([state, prefix]) => EVENTS.map(([evName, ev], i) => [state, evName, prefix, ev, i] as const));
  it.each(rows)('%s + %s', (state, _evName, prefix, ev, i) => {
    const s = new RelaySession();
    const all: SessionAction[] = [];
    feed(s, prefix, all);
    const a = feed(s, [ev], all);
    expect(outcome(s, a)).toEqual(EXPECTED[state]![i]);
  });
});
