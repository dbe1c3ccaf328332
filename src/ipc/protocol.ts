/**
 * The control socket's protocol, shared by both ends: newline-delimited JSON, one request
 * and one response per line, matched by id. The socket is 0600 inside the 0700 state
 * directory, so only the user reaches it; set-token's token travels here, never in argv.
 */
import type { RotationResult } from '../rotation/result.js';

export type Method = 'ping' | 'rotate' | 'revoke-now' | 'set-token' | 'broker-token' | 'broker-endpoint';

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

/**
 * broker-endpoint: the port the daemon's local endpoint listens on (`{ port }`, null: none);
 * with `listen: true` the daemon listens first (broker enable, before writing any URL).
 */
export interface BrokerEndpointParams {
  listen?: boolean;
}

export type Request =
  | { id: number; method: 'ping' }
  | { id: number; method: 'rotate'; params: RotateParams }
  | { id: number; method: 'revoke-now'; params: Record<string, never> }
  | { id: number; method: 'set-token'; params: SetTokenParams }
  | { id: number; method: 'broker-token'; params: BrokerTokenParams }
  | { id: number; method: 'broker-endpoint'; params: BrokerEndpointParams };

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
  /** Something the user must fix (exit 2). */
  warnings: string[];
  /** Something the user must know that is not a failure (e.g. a replaced token still works). */
  notices?: string[];
  /** Tokens whose provider cannot rotate by API (GitHub): where to make a new one, and the set-token command. */
  manual?: Array<{ fingerprint: string; provider: string; page: string; command: string }>;
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

/** A request refused before it reached the daemon's handler; `id` is echoed when the request had one. */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly id: number = -1,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const FINGERPRINT = /^[0-9a-f]{12}$/;
const MAX_TOKEN = 16 * 1024;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Pure: the params a method may carry, checked as strictly as the CLI checks its flags.
 * Whoever reaches the socket gets exactly what the CLI offers: no unknown field slips
 * through to the operation (a `dryRun`, a `source`), and an empty `fingerprints` list
 * is refused rather than read as "every token".
 */
export function paramsError(method: Method, params: unknown): string | undefined {
  if (params === undefined) return method === 'set-token' ? 'set-token needs params with a "token"' : method === 'broker-token' ? 'broker-token needs params with a "slot"' : undefined;
  if (!isPlainObject(params)) return `${method}: "params" must be an object`;
  const allowed: Record<Method, string[]> = { ping: [], 'revoke-now': [], rotate: ['fingerprints', 'ifDue'], 'set-token': ['token', 'fingerprint'], 'broker-token': ['slot'], 'broker-endpoint': ['listen'] };
  const unknown = Object.keys(params).filter((k) => !allowed[method].includes(k));
  if (unknown.length) return `${method}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`;
  if (method === 'rotate') {
    const { fingerprints: fps, ifDue } = params;
    if (fps !== undefined) {
      if (!Array.isArray(fps) || fps.length === 0) return 'rotate: "fingerprints" must be a non-empty list (leave it out to mean every token)';
      const bad = fps.find((f) => typeof f !== 'string' || !FINGERPRINT.test(f));
      if (bad !== undefined) return `rotate: "fingerprints" holds ${JSON.stringify(bad)}, not 12 hex characters as "status" shows`;
    }
    if (ifDue !== undefined && typeof ifDue !== 'boolean') return 'rotate: "ifDue" must be true or false';
  }
  if (method === 'set-token') {
    const { token, fingerprint } = params;
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN || /\s/.test(token)) return 'set-token: "token" must be one word of at most 16 KB (the token itself)';
    if (fingerprint !== undefined && (typeof fingerprint !== 'string' || !FINGERPRINT.test(fingerprint))) return 'set-token: "fingerprint" must be 12 hex characters as "status" shows';
  }
  if (method === 'broker-token' && (typeof params.slot !== 'string' || !/^[a-z][a-z0-9-]{2,63}$/.test(params.slot))) return 'broker-token: "slot" must be a slot name as "broker status" shows';
  if (method === 'broker-endpoint' && params.listen !== undefined && typeof params.listen !== 'boolean') return 'broker-endpoint: "listen" must be true or false';
  return undefined;
}

const METHODS: readonly Method[] = ['ping', 'rotate', 'revoke-now', 'set-token', 'broker-token', 'broker-endpoint'];

export function parseRequest(line: string): Request {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new ProtocolError('malformed request: not JSON');
  }
  if (!isPlainObject(v)) throw new ProtocolError('malformed request: not an object');
  const id = typeof v.id === 'number' && Number.isSafeInteger(v.id) ? v.id : undefined;
  if (id === undefined) throw new ProtocolError('malformed request: "id" must be a whole number');
  const extra = Object.keys(v).filter((k) => !['id', 'method', 'params'].includes(k));
  if (extra.length) throw new ProtocolError(`malformed request: unknown field ${extra.map((k) => JSON.stringify(k)).join(', ')}`, id);
  const method = v.method;
  if (typeof method !== 'string' || !METHODS.includes(method as Method)) throw new ProtocolError(`unknown method ${JSON.stringify(method)}`, id);
  const problem = paramsError(method as Method, v.params);
  if (problem) throw new ProtocolError(problem, id);
  return { id, method, params: v.params ?? {} } as Request;
}
