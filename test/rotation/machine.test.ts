import { describe, expect, it } from 'vitest';
import { mayRetryRegenerate, nextAction, transition, type MachineState } from '../../src/rotation/machine.js';

const f = (path: string, written = false) => ({ path, client: 'cursor', format: 'json', written });
/** A config that cannot hold the new token (e.g. a .env line and a token with every quote). */
const u = (path: string) => ({ ...f(path), unholdable: 'characters a .env line cannot carry' });

describe('rotation state machine: next action', () => {
  it.each<[string, MachineState, ReturnType<typeof nextAction>]>([
    ['intent -> call regenerate', { step: 'intent', files: [f('a')], hasNewToken: false }, { type: 'regenerate' }],
    ['regenerated, nothing written -> write all', { step: 'regenerated', files: [f('a'), f('b')], hasNewToken: true }, { type: 'write', files: ['a', 'b'] }],
    ['regenerated, half written -> write the rest', { step: 'regenerated', files: [f('a', true), f('b')], hasNewToken: true }, { type: 'write', files: ['b'] }],
    ['regenerated, all written -> verify', { step: 'regenerated', files: [f('a', true), f('b', true)], hasNewToken: true }, { type: 'verify' }],
    ['regenerated without a token (impossible) -> replay', { step: 'regenerated', files: [f('a')], hasNewToken: false }, { type: 'regenerate' }],
    ['regenerated, one file cannot hold it, the rest pending -> write the rest', { step: 'regenerated', files: [u('a'), f('b')], hasNewToken: true }, { type: 'write', files: ['b'] }],
    ['regenerated, the others written, one cannot hold it -> verify', { step: 'regenerated', files: [f('a', true), u('b')], hasNewToken: true }, { type: 'verify' }],
    ['regenerated, no file can hold it -> abandon', { step: 'regenerated', files: [u('a'), u('b')], hasNewToken: true }, { type: 'abandon' }],
    ['verified -> finish', { step: 'verified', files: [f('a', true)], hasNewToken: true }, { type: 'finish' }],
    ['finished -> nothing', { step: 'finished', files: [], hasNewToken: false }, { type: 'none' }],
    ['failed -> nothing', { step: 'failed', files: [f('a')], hasNewToken: false }, { type: 'none' }],
    ['broker: intent -> announce before the regenerate call', { step: 'intent', files: [], hasNewToken: false, broker: { announce: true, store: true } }, { type: 'announce' }],
    ['broker: announced -> regenerate', { step: 'intent', files: [], hasNewToken: false, broker: { announce: false, store: true } }, { type: 'regenerate' }],
    ['broker: regenerated -> store before any write', { step: 'regenerated', files: [f('a')], hasNewToken: true, broker: { announce: false, store: true } }, { type: 'store' }],
    ['broker: resumed with all files written -> store again before verify', { step: 'regenerated', files: [f('a', true)], hasNewToken: true, broker: { announce: true, store: true } }, { type: 'store' }],
    ['broker: stored -> write', { step: 'regenerated', files: [f('a')], hasNewToken: true, broker: { announce: false, store: false } }, { type: 'write', files: ['a'] }],
    ['broker: stored, no files (the token lives only in slots) -> verify', { step: 'regenerated', files: [], hasNewToken: true, broker: { announce: true, store: false } }, { type: 'verify' }],
  ])('%s', (_name, state, action) => {
    expect(nextAction(state)).toEqual(action);
  });
});

describe('rotation state machine: transitions', () => {
  const intent: MachineState = { step: 'intent', files: [f('a'), f('b')], hasNewToken: false };
  it.each<[string, MachineState, Parameters<typeof transition>[1], Partial<MachineState>]>([
    ['regenerate ok moves intent to regenerated', intent, { type: 'regenerated' }, { step: 'regenerated', hasNewToken: true }],
    ['a refusal fails an intent', intent, { type: 'regenerate-refused' }, { step: 'failed' }],
    ['a transient failure stays put', intent, { type: 'transient' }, { step: 'intent' }],
    ['a refusal after regenerating changes nothing', { ...intent, step: 'regenerated', hasNewToken: true }, { type: 'regenerate-refused' }, { step: 'regenerated' }],
    ['verify before all files are written is ignored', { ...intent, step: 'regenerated', hasNewToken: true }, { type: 'verified' }, { step: 'regenerated' }],
    ['verify after all files are written', { step: 'regenerated', files: [f('a', true)], hasNewToken: true }, { type: 'verified' }, { step: 'verified' }],
    ['finish only from verified', { ...intent, step: 'regenerated', hasNewToken: true }, { type: 'finished' }, { step: 'regenerated' }],
    ['finish from verified', { step: 'verified', files: [f('a', true)], hasNewToken: true }, { type: 'finished' }, { step: 'finished' }],
    ['verify with one file that cannot hold the token', { step: 'regenerated', files: [f('a', true), u('b')], hasNewToken: true }, { type: 'verified' }, { step: 'verified' }],
    ['abandon when no file can hold it', { step: 'regenerated', files: [u('a'), u('b')], hasNewToken: true }, { type: 'abandoned' }, { step: 'failed' }],
    ['no abandon while a file holds it', { step: 'regenerated', files: [f('a', true), u('b')], hasNewToken: true }, { type: 'abandoned' }, { step: 'regenerated' }],
    ['a written file is never marked unholdable', { step: 'regenerated', files: [f('a', true)], hasNewToken: true }, { type: 'file-unholdable', path: 'a', reason: 'x' }, { files: [f('a', true)] }],
    ['a pending file is', { step: 'regenerated', files: [f('a')], hasNewToken: true }, { type: 'file-unholdable', path: 'a', reason: 'x' }, { files: [{ ...f('a'), unholdable: 'x' }] }],
  ])('%s', (_name, state, outcome, expected) => {
    expect(transition(state, outcome)).toMatchObject(expected);
  });

  it('marks a written file and discovers new ones without duplicates', () => {
    const s1 = transition({ ...intent, step: 'regenerated', hasNewToken: true }, { type: 'file-written', path: 'a' });
    expect(s1.files).toEqual([f('a', true), f('b')]);
    const s2 = transition(s1, { type: 'files-discovered', paths: [{ path: 'b', client: 'cursor', format: 'json' }, { path: 'c', client: 'zed', format: 'jsonc' }] });
    expect(s2.files.map((x) => [x.path, x.written])).toEqual([['a', true], ['b', false], ['c', false]]);
    expect(transition(s2, { type: 'files-discovered', paths: [] })).toBe(s2);
  });
});

describe('rotation state machine: a provider without idempotency (GitLab, Cloudflare)', () => {
  const intent: MachineState = { step: 'intent', files: [f('a')], hasNewToken: false, idempotent: false };
  const calling: MachineState = { ...intent, step: 'calling' };
  it.each<[string, MachineState, Parameters<typeof transition>[1], Partial<MachineState>]>([
    ['the call is journaled as calling before it leaves', intent, { type: 'call-sent' }, { step: 'calling' }],
    ['an idempotent provider has no calling step', { ...intent, idempotent: true }, { type: 'call-sent' }, { step: 'intent' }],
    ['an answer moves calling on', calling, { type: 'regenerated' }, { step: 'regenerated', hasNewToken: true }],
    ['a refusal fails it', calling, { type: 'regenerate-refused' }, { step: 'failed' }],
    ['a lost answer (timeout, reset, 5xx) ends it as lost: never sent again', calling, { type: 'transient' }, { step: 'lost' }],
    ['a call that never left goes back to intent', calling, { type: 'transient', notSent: true }, { step: 'intent' }],
    ['lost only from calling', intent, { type: 'lost' }, { step: 'intent' }],
    ['lost from calling', calling, { type: 'lost' }, { step: 'lost' }],
    ['an idempotent provider stays at intent on a transient failure (replayed with its key)', { ...intent, idempotent: true }, { type: 'transient' }, { step: 'intent' }],
  ])('%s', (_name, state, outcome, expected) => {
    expect(transition(state, outcome)).toMatchObject(expected);
  });

  it.each<[string, MachineState, ReturnType<typeof nextAction>]>([
    ['intent -> the one call', intent, { type: 'regenerate' }],
    ['calling found on resume (a crash, a lost answer) -> lose, never regenerate again', calling, { type: 'lose' }],
    ['lost -> nothing', { ...intent, step: 'lost' }, { type: 'none' }],
  ])('next: %s', (_name, state, action) => {
    expect(nextAction(state)).toEqual(action);
  });

  it.each<[boolean, { transient: boolean; notSent: boolean }, boolean]>([
    [true, { transient: true, notSent: false }, true],
    [true, { transient: false, notSent: false }, false],
    [false, { transient: true, notSent: false }, false],
    [false, { transient: true, notSent: true }, true],
    [false, { transient: false, notSent: true }, false],
  ])('may retry (idempotent %s, %o): %s', (idempotent, failure, want) => {
    expect(mayRetryRegenerate(idempotent, failure)).toBe(want);
  });
});
