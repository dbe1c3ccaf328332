import type { Context } from './context.js';
import { ageDays, publicState, type PublicState } from './rotation/policy.js';
import { brokerLocations } from './broker/locations.js';

export interface StatusToken {
  fingerprint: string;
  provider: string;
  role: string | null;
  createdAt: string | null;
  firstSeenAt: string;
  /** Whole days from createdAt; null while the API has not told the creation date (or never does). */
  ageDays: number | null;
  /** ISO 8601, as the provider's API told it; null when it does not expire (or nobody said). */
  expiresAt: string | null;
  state: PublicState;
  locations: Array<{ path: string; client: string }>;
}

/**
 * The contract's `status` view, from what is recorded (works offline): every token that
 * a config holds, or that an unfinished rotation is about. Retired tokens are history.
 */
export function buildStatus(ctx: Context): StatusToken[] {
  const now = ctx.now();
  const store = ctx.store;
  const rotating = ctx.journal.openFingerprints();
  const locs = new Map<string, Array<{ path: string; client: string }>>();
  // Broker mode: a converted entry is still where the token is used, though no config holds it.
  for (const l of [...store.listLocations(), ...brokerLocations(store)]) {
    let list = locs.get(l.fingerprint);
    if (!list) locs.set(l.fingerprint, (list = []));
    if (!list.some((x) => x.path === l.path)) list.push({ path: l.path, client: l.client });
  }
  const out: StatusToken[] = [];
  for (const t of store.listTokens()) {
    const isRotating = rotating.has(t.fingerprint);
    if (t.state === 'retired' && !isRotating) continue;
    const locations = locs.get(t.fingerprint) ?? [];
    if (!locations.length && !isRotating) continue;
    out.push({
      fingerprint: t.fingerprint,
      provider: t.provider,
      role: t.role,
      createdAt: t.createdAt,
      firstSeenAt: t.firstSeenAt,
      ageDays: ageDays(t, now),
      expiresAt: t.expiresAt,
      state: publicState(t, now, ctx.settings.warnAfterDays, isRotating, ctx.settings.warnBeforeExpiryDays),
      locations,
    });
  }
  return out;
}

/** A token set-token replaced while the API still accepted it: not held by any config, not dead. */
export interface StillAliveToken {
  fingerprint: string;
  replacedBy: string | null;
  replacedAt: string | null;
  /** When the API last accepted it. */
  aliveAt: string;
}

/**
 * Listed apart from `tokens` (which are the tokens the configs hold, in the contract's
 * states): the user has to revoke these in the web UI, since this tool no longer has them.
 */
export function buildStillAlive(ctx: Context): StillAliveToken[] {
  return ctx.store.listStillAlive().map((t) => ({ fingerprint: t.fingerprint, replacedBy: t.replacedBy, replacedAt: t.retiredAt, aliveAt: t.stillAliveAt as string }));
}

/** A rotation the journal holds open: status shows it and the command that finishes it. */
export interface UnfinishedRotation {
  fingerprint: string;
  /** Known once Certorix answered the regenerate call (the old token is then dead). */
  newFingerprint: string | null;
  step: string;
  startedAt: string;
  attempts: number;
  lastError: string | null;
  /** Config files still holding the old token. */
  pendingFiles: string[];
  finishWith: string;
}

/** A tracked config (one a token was found in) that cannot be read or parsed any more. */
export interface BrokenConfig {
  path: string;
  client: string;
  error: string;
  fingerprints: string[];
}

export function finishCommand(fp: string): string {
  return `mcp-token-rotator rotate --fingerprint ${fp}`;
}

/** Offline: the journal's open rows, as status reports them. */
export function buildUnfinished(ctx: Context): UnfinishedRotation[] {
  return ctx.journal.open().map((r) => ({
    fingerprint: r.oldFingerprint,
    newFingerprint: r.newFingerprint,
    step: r.step,
    startedAt: r.startedAt,
    attempts: r.attempts,
    lastError: r.error,
    pendingFiles: r.files.filter((f) => !f.written && !f.unholdable).map((f) => f.path),
    finishWith: finishCommand(r.oldFingerprint),
  }));
}

/** Offline: recorded configs that failed to parse while a token was recorded in them. */
export function buildBrokenConfigs(ctx: Context): BrokenConfig[] {
  const held = new Map<string, Set<string>>();
  for (const l of ctx.store.listLocations()) {
    let s = held.get(l.path);
    if (!s) held.set(l.path, (s = new Set()));
    s.add(l.fingerprint);
  }
  return ctx.store
    .listConfigs()
    .filter((c) => c.status === 'error' && held.has(c.path))
    .map((c) => ({ path: c.path, client: c.client, error: c.error ?? 'cannot be parsed', fingerprints: [...(held.get(c.path) ?? [])] }));
}

/**
 * Whether a tracked config changed on disk since it was last scanned (or is gone): only
 * then does status read the configs again (offline), so an edit that broke one is seen
 * without a scan, while an unchanged machine costs one stat per tracked file.
 */
export async function trackedConfigsChanged(ctx: Context): Promise<boolean> {
  const { stat } = await import('node:fs/promises');
  const tracked = new Set(ctx.store.listLocations().map((l) => l.path));
  for (const c of ctx.store.listConfigs()) {
    if (!tracked.has(c.path)) continue;
    const scannedAt = Date.parse(c.scannedAt);
    try {
      const st = await stat(c.path);
      // ctime too: a chmod or a rename over it. One second of slack for coarse file times.
      if (!(Math.max(st.mtimeMs, st.ctimeMs) < scannedAt - 1000)) return true;
    } catch {
      return true;
    }
  }
  return false;
}
