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
