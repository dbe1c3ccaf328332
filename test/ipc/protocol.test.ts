/**
 * Issue 9 §8: the control socket's params are validated like the CLI's flags. Whoever can
 * reach the socket gets exactly what the CLI offers: an empty `fingerprints` list is not
 * "every token", unknown fields and wrong types are refused with a clear error, and the
 * refusal carries the request's id so the caller is answered at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRequest } from '../../src/ipc/protocol.js';
import { startControlServer, type ControlServer } from '../../src/ipc/server.js';
import type { Request } from '../../src/ipc/protocol.js';

const FP = 'a1b2c3d4e5f6';

describe('parseRequest', () => {
  it.each([
    [{ id: 1, method: 'ping' }, { id: 1, method: 'ping', params: {} }],
    [{ id: 2, method: 'rotate', params: {} }, { id: 2, method: 'rotate', params: {} }],
    [{ id: 3, method: 'rotate', params: { fingerprints: [FP], ifDue: true } }, { id: 3, method: 'rotate', params: { fingerprints: [FP], ifDue: true } }],
    [{ id: 4, method: 'revoke-now', params: {} }, { id: 4, method: 'revoke-now', params: {} }],
    [{ id: 5, method: 'set-token', params: { token: 'crtx_abc', fingerprint: FP } }, { id: 5, method: 'set-token', params: { token: 'crtx_abc', fingerprint: FP } }],
    [{ id: 6, method: 'broker-endpoint', params: { listen: true } }, { id: 6, method: 'broker-endpoint', params: { listen: true } }],
    [{ id: 8, method: 'broker-endpoint' }, { id: 8, method: 'broker-endpoint', params: {} }],
  ])('accepts %j', (req, want) => {
    expect(parseRequest(JSON.stringify(req))).toEqual(want);
  });

  it.each([
    ['not JSON', '{', /not JSON/, -1],
    ['an array', '[1]', /not an object/, -1],
    ['no id', { method: 'ping' }, /"id" must be a whole number/, -1],
    ['a fractional id', { id: 1.5, method: 'ping' }, /"id"/, -1],
    ['an unknown top-level field', { id: 7, method: 'ping', as: 'root' }, /unknown field "as"/, 7],
    ['an unknown method', { id: 7, method: 'drop-tables' }, /unknown method "drop-tables"/, 7],
    ['an empty fingerprints list', { id: 7, method: 'rotate', params: { fingerprints: [] } }, /non-empty list/, 7],
    ['fingerprints not a list', { id: 7, method: 'rotate', params: { fingerprints: FP } }, /non-empty list/, 7],
    ['a bad fingerprint', { id: 7, method: 'rotate', params: { fingerprints: [FP, 'zz'] } }, /holds "zz", not 12 hex/, 7],
    ['a number as fingerprint', { id: 7, method: 'rotate', params: { fingerprints: [42] } }, /holds 42/, 7],
    ['ifDue as a string', { id: 7, method: 'rotate', params: { ifDue: 'yes' } }, /"ifDue" must be true or false/, 7],
    ['broker-endpoint with a port to listen on', { id: 7, method: 'broker-endpoint', params: { port: 80 } }, /unknown field "port"/, 7],
    ['broker-endpoint listen as a string', { id: 7, method: 'broker-endpoint', params: { listen: 'yes' } }, /"listen" must be true or false/, 7],
    ['dryRun smuggled in', { id: 7, method: 'rotate', params: { dryRun: true } }, /rotate: unknown field "dryRun"/, 7],
    ['source smuggled in', { id: 7, method: 'rotate', params: { source: 'schedule' } }, /unknown field "source"/, 7],
    ['params not an object', { id: 7, method: 'rotate', params: [FP] }, /"params" must be an object/, 7],
    ['revoke-now with params', { id: 7, method: 'revoke-now', params: { yes: true } }, /revoke-now: unknown field "yes"/, 7],
    ['set-token without params', { id: 7, method: 'set-token' }, /needs params with a "token"/, 7],
    ['set-token with an empty token', { id: 7, method: 'set-token', params: { token: '' } }, /"token" must be one word/, 7],
    ['set-token with two words', { id: 7, method: 'set-token', params: { token: 'a b' } }, /"token" must be one word/, 7],
    ['set-token with a bad fingerprint', { id: 7, method: 'set-token', params: { token: 'crtx_a', fingerprint: 'ABC' } }, /"fingerprint" must be 12 hex/, 7],
  ] as Array<[string, unknown, RegExp, number]>)('refuses %s', (_name, req, message, id) => {
    let err: unknown;
    try {
      parseRequest(typeof req === 'string' ? req : JSON.stringify(req));
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(message);
    expect((err as { id: number }).id).toBe(id);
  });
});

describe('the control server', () => {
  let dir: string;
  let server: ControlServer;
  const handled: Request[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mtr-ipc-'));
    server = await startControlServer(path.join(dir, 'control.sock'), async (req) => {
      handled.push(req);
      return { done: true };
    });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  function send(line: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const sock = connect(path.join(dir, 'control.sock'));
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write(line + '\n'));
      sock.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\n')) {
          sock.destroy();
          resolve(JSON.parse(buf.split('\n')[0]!) as Record<string, unknown>);
        }
      });
      sock.on('error', reject);
    });
  }

  it('an empty fingerprints list is answered with an error under its own id; the handler never runs', async () => {
    const r = await send(JSON.stringify({ id: 9, method: 'rotate', params: { fingerprints: [] } }));
    expect(r).toMatchObject({ id: 9, ok: false, error: { code: 'E_USAGE', message: expect.stringMatching(/non-empty list/) as unknown } });
    expect(handled).toEqual([]);
  });

  it('a valid request still reaches the handler', async () => {
    const r = await send(JSON.stringify({ id: 10, method: 'rotate', params: { fingerprints: [FP] } }));
    expect(r).toMatchObject({ id: 10, ok: true, result: { done: true } });
    expect(handled).toEqual([{ id: 10, method: 'rotate', params: { fingerprints: [FP] } }]);
  });
});
