import { clientById } from '../clients/catalog.js';
import type { RotatorError } from '../errors.js';
import type { HookResult } from './hooks.js';

export interface RotationResult {
  fingerprint: string;
  newFingerprint: string | null;
  /** already-rotated: another run rotated it meanwhile; `newFingerprint` is its current successor. */
  status: 'rotated' | 'planned' | 'failed' | 'pending' | 'already-rotated';
  files: Array<{ path: string; client: string }>;
  restart: string[];
  error?: RotatorError;
  hooks?: HookResult[];
  /** Not failures, but the user must know them (operations.ts lifts them into the response). */
  notices?: string[];
  /** Left for the user to fix although the rotation finished (operations.ts lifts them into the response's warnings: exit 2). */
  leftToFix?: string[];
  /** Things the user should know about a rotation that succeeded (a file's mode narrowed). */
  warnings?: string[];
}


/** Guarantee 8: which running clients must be restarted, one line per client. */
export function restartHints(files: Array<{ client: string }>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of files) {
    const spec = clientById(f.client);
    if (seen.has(spec.id)) continue;
    seen.add(spec.id);
    out.push(spec.restartHint);
  }
  return out;
}

/** The advice as printed under a finished rotation (empty when no client needs anything). */
export function restartLines(restart: string[]): string[] {
  return restart.length ? ['  To pick up the new token:', ...restart.map((h) => `    - ${h}`)] : [];
}
