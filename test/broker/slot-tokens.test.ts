import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SlotTokens } from '../../src/broker/endpoint/tokens.js';
import { FileTokenStore } from '../../src/broker/store.js';
import { brokerBus, drainInFlight } from '../../src/broker/events.js';
import { HOLD_MS } from '../../src/broker/endpoint/policy.js';
import { Secret } from '../../src/secret.js';

let dir: string;
let store: FileTokenStore;
let tokens: SlotTokens;
const A = 'certorix-aaaaaaaa';
const B = 'certorix-bbbbbbbb';
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mtr-slots-'));
  store = new FileTokenStore(dir);
  await store.write(A, new Secret('ctx_old_token_aaaaaaaa'));
  await store.write(B, new Secret('ctx_token_bbbbbbbbbbbb'));
  tokens = new SlotTokens(store);
});
afterEach(async () => {
  tokens.close();
  await rm(dir, { recursive: true, force: true });
});

const announce = (generation: number, slots: string[], revoke = false) => brokerBus.emit('event', { type: 'announce', generation, slots, fingerprint: 'f', revoke });
const stored = (generation: number, slots: string[]) => brokerBus.emit('event', { type: 'stored', generation, slots, fingerprint: 'f', newFingerprint: 'g' });
const aborted = (generation: number, slots: string[]) => brokerBus.emit('event', { type: 'aborted', generation, slots, fingerprint: 'f' });

describe('SlotTokens', () => {
  it('caches the token; a fresh read sees the store', async () => {
    expect((await tokens.get(A))?.reveal()).toBe('ctx_old_token_aaaaaaaa');
    await store.write(A, new Secret('ctx_new_token_aaaaaaaa'));
    expect((await tokens.get(A))?.reveal()).toBe('ctx_old_token_aaaaaaaa');
    expect((await tokens.get(A, { fresh: true }))?.reveal()).toBe('ctx_new_token_aaaaaaaa');
    expect(await tokens.get('certorix-cccccccc')).toBeNull();
  });

  it('holds an announced slot until stored, then hands out the new token; other slots pass', async () => {
    await tokens.get(A);
    announce(1, [A]);
    let got: string | undefined;
    const p = tokens.get(A).then((t) => (got = t?.reveal()));
    expect((await tokens.get(B))?.reveal()).toBe('ctx_token_bbbbbbbbbbbb');
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBeUndefined();
    stored(0, [A]); // an older generation's release does not end it
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toBeUndefined();
    await store.write(A, new Secret('ctx_new_token_aaaaaaaa'));
    stored(1, [A]);
    await p;
    expect(got).toBe('ctx_new_token_aaaaaaaa');
  });

  it('aborted releases with the token still in the store', async () => {
    announce(2, [A]);
    const p = tokens.get(A);
    aborted(2, [A]);
    expect((await p)?.reveal()).toBe('ctx_old_token_aaaaaaaa');
  });

  it('the hold is bounded: revoke-now releases after a few seconds even without stored', async () => {
    announce(3, [A], true);
    const t0 = Date.now();
    const waited = await tokens.waitUntilReleased(A);
    expect(waited).toBeGreaterThanOrEqual(HOLD_MS.revoke - 50);
    expect(Date.now() - t0).toBeLessThan(HOLD_MS.revoke + 1_500);
  }, 10_000);

  it('close() releases waiting requests', async () => {
    announce(4, [A]);
    const p = tokens.get(A);
    tokens.close();
    expect((await p)?.reveal()).toBe('ctx_old_token_aaaaaaaa');
  });

  it('drainInFlight waits for requests on the wire, bounded, and ignores other slots', async () => {
    const doneA = tokens.track(A);
    const doneB = tokens.track(B);
    let drained = false;
    const p = drainInFlight([A], 5_000).then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);
    doneA();
    doneA(); // idempotent
    await p;
    expect(tokens.inFlight(A)).toBe(0);
    expect(tokens.inFlight(B)).toBe(1);
    const t0 = Date.now();
    await drainInFlight([B], 200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    doneB();
  });
});
