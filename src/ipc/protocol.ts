/**
 * The control socket's protocol, shared by both ends: newline-delimited JSON, one request
 * and one response per line, matched by id. The socket is 0600 inside the 0700 state
 * directory, so only the user reaches it; set-token's token travels here, never in argv.
 */
import type { RotationResult } from '../rotation/run.js';

export type Method = 'ping' | 'rotate' | 'revoke-now' | 'set-token' | 'broker-token';

export interface RotateParams {
  fingerprints?: string[];
  ifDue?: boolean;
}

export interface SetTokenParams {
  token: string;
  fingerprint?: string;
}

/** broker-token: an exec wrapper asks for the current token of its slot; answers `{ token }`. */
export interface BrokerTokenParams {
  slot: string;
}

export type Request =
  | { id: number; method: 'ping' }
  | { id: number; method: 'rotate'; params: RotateParams }
  | { id: number; method: 'revoke-now'; params: Record<string, never> }
  | { id: number; method: 'set-token'; params: SetTokenParams }
  | { id: number; method: 'broker-token'; params: BrokerTokenParams };

export interface WireError {
  code: string;
  message: string;
  hint?: string;
  file?: string;
}

export interface WireRotation extends Omit<RotationResult, 'error'> {
  error?: WireError;
}

export interface RotateResponse {
  rotations: WireRotation[];
  warnings: string[];
}

export type Response =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: WireError };

export const MAX_LINE = 1024 * 1024;

export function encode(msg: Request | Response): string {
  return JSON.stringify(msg) + '\n';
}

/** Splits a stream of chunks into complete lines; refuses absurdly long ones. */
export class LineDecoder {
  #buf = '';
  push(chunk: string): string[] {
    this.#buf += chunk;
    if (this.#buf.length > MAX_LINE) throw new Error('control message too long');
    const lines = this.#buf.split('\n');
    this.#buf = lines.pop() ?? '';
    return lines.filter((l) => l.trim() !== '');
  }
}

export function parseRequest(line: string): Request {
  const v = JSON.parse(line) as Partial<Request> & { params?: unknown };
  if (typeof v !== 'object' || v === null || typeof v.id !== 'number' || typeof v.method !== 'string') throw new Error('malformed request');
  if (!['ping', 'rotate', 'revoke-now', 'set-token', 'broker-token'].includes(v.method)) throw new Error(`unknown method ${v.method}`);
  if (v.method === 'broker-token' && typeof (v.params as Partial<BrokerTokenParams> | undefined)?.slot !== 'string') throw new Error('broker-token needs a slot');
  if (v.method === 'set-token') {
    const p = v.params as Partial<SetTokenParams> | undefined;
    if (!p || typeof p.token !== 'string') throw new Error('set-token needs a token');
  }
  return v as Request;
}
