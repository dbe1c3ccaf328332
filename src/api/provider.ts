/**
 * What the rotation engine needs from a token vendor. Certorix is the only one today; the
 * interface is kept to the two calls the lifecycle needs so another vendor can slot in.
 * Failures reject with ApiError (src/errors.ts), already classified for retry decisions.
 */
import type { Secret } from '../secret.js';

export type Role = 'admin' | 'editor' | 'viewer';

export interface TokenInfo {
  id: string;
  /** Certorix's roles, or whatever another vendor (or a future Certorix) reports. */
  role: Role | string;
  email?: string;
  /** ISO 8601, normalised to UTC (`Date#toISOString`). */
  createdAt?: string;
}

export interface RegenerateResult {
  token: Secret;
  id: string;
  /** ISO 8601, normalised to UTC. */
  createdAt?: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface Provider {
  readonly name: string;
  /** GET /v1/token: who the token belongs to, its role and age. */
  inspect(token: Secret, opts?: CallOptions): Promise<TokenInfo>;
  /**
   * POST /v1/token/regenerate. The old token dies the moment the server acts, so callers
   * journal `idempotencyKey` first and reuse it on every retry of the same rotation.
   */
  regenerate(token: Secret, idempotencyKey: string, opts?: CallOptions): Promise<RegenerateResult>;
  close(): Promise<void>;
}
