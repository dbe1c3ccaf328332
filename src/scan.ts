import type { Context } from './context.js';
import { discoverConfigs, keyPathString, scanConfig, type ScannedConfig } from './clients/discover.js';
import type { TokenSite } from './clients/formats.js';
import { ApiError } from './errors.js';
import { Secret } from './secret.js';
import { buildStatus, type StatusToken } from './status.js';
import type { TokenInfo } from './providers/types.js';
import type { TokenInfoUpdate } from './store/store.js';

/**
 * What the store records of a token its provider accepted: the provider's facts, checked now,
 * active. Expiry and kind only when the provider said (absent keeps what was recorded).
 */
export function acceptedTokenFacts(info: TokenInfo, checkedAt: string): TokenInfoUpdate {
  return {
    role: info.role,
    account: info.email ?? null,
    tokenId: info.id,
    createdAt: info.createdAt ?? null,
    checkedAt,
    state: 'active',
    ...(info.expiresAt !== undefined ? { expiresAt: info.expiresAt } : {}),
    ...(info.tokenKind !== undefined ? { tokenKind: info.tokenKind } : {}),
  };
}

export interface FoundToken {
  secret: Secret;
  sites: Array<{ path: string; client: string; site: TokenSite }>;
  /** The provider of the entries that hold it (its first site's); absent for a broker slot's token (the store knows). */
  provider?: string;
  /** The API base its entry names for itself (GitLab), if any. */
  apiUrl?: string;
}

export interface ScanResult {
  configs: ScannedConfig[];
  /** Every token found, by fingerprint (in memory only; never stored). */
  tokens: Map<string, FoundToken>;
}

/** Discover and parse every config; no network, no store. */
export async function findTokens(ctx: Context): Promise<ScanResult> {
  const candidates = await discoverConfigs({
    pathEnv: ctx.pathEnv,
    extraConfigs: ctx.settings.extraConfigs,
    disableClients: ctx.settings.disableClients,
  });
  const configs = await Promise.all(candidates.map(scanConfig));
  const tokens = new Map<string, FoundToken>();
  for (const c of configs) {
    for (const site of c.sites) {
      const secret = new Secret(site.token);
      let t = tokens.get(secret.fingerprint);
      if (!t) tokens.set(secret.fingerprint, (t = { secret, sites: [], provider: site.provider, ...(site.apiUrl !== undefined ? { apiUrl: site.apiUrl } : {}) }));
      t.sites.push({ path: c.candidate.path, client: c.candidate.client, site });
    }
  }
  return { configs, tokens };
}

/** Records what findTokens saw: configs, locations, first sightings. */
export function recordScan(ctx: Context, result: ScanResult): { newFingerprints: string[] } {
  const store = ctx.store;
  const now = ctx.nowIso();
  const newFingerprints: string[] = [];
  store.transaction(() => {
    const present = new Set(result.configs.map((c) => c.candidate.path));
    for (const old of store.listConfigs()) if (!present.has(old.path)) store.forgetConfig(old.path);
    for (const [fp, t] of result.tokens) {
      // A broker slot's token (no sites) keeps the provider recorded when it was in a config.
      if (t.provider === undefined) continue;
      if (store.recordSeen(fp, t.provider, now, t.apiUrl ?? null)) newFingerprints.push(fp);
    }
    for (const c of result.configs) {
      store.recordConfig(
        { path: c.candidate.path, client: c.candidate.client, format: c.candidate.format, status: c.status, error: c.error?.message ?? null },
        c.sites.map((s) => ({
          keyPath: keyPathString(s.keyPath),
          fingerprint: new Secret(s.token).fingerprint,
          client: c.candidate.client,
          server: s.server,
          kind: s.kind,
        })),
        now,
      );
    }
    store.setMeta('lastScanAt', now);
  });
  return { newFingerprints };
}

export interface InspectOutcome {
  fingerprint: string;
  ok: boolean;
  /**
   * ok: the API answered 200 (facts recorded); invalid: it refused the token (401);
   * unreachable: a transient failure (network, timeout, 429, 5xx) worth retrying later;
   * error: any other refusal. `wasInvalid` tells a fresh 401 from a known one.
   */
  kind: 'ok' | 'invalid' | 'unreachable' | 'error';
  wasInvalid?: boolean;
  error?: string;
}

/**
 * Asks the API about each live token (role, created_at, validity). A 401 marks the token
 * invalid; a network failure leaves what was recorded and is reported as a warning.
 */
export async function inspectTokens(ctx: Context, tokens: Iterable<[string, Secret]>): Promise<InspectOutcome[]> {
  const list = [...tokens];
  const out: InspectOutcome[] = [];
  const worker = async () => {
    for (let item = list.shift(); item; item = list.shift()) {
      const [fp, secret] = item;
      const row = ctx.store.getToken(fp);
      if (row?.state === 'retired') continue;
      try {
        // Only ever the token's own provider (by the entry that holds it, as recorded).
        const provider = await ctx.clientForToken(fp);
        const info = await provider.inspect(secret);
        ctx.store.updateTokenInfo(fp, acceptedTokenFacts(info, ctx.nowIso()));
        out.push({ fingerprint: fp, ok: true, kind: 'ok' });
      } catch (e) {
        if (e instanceof ApiError && e.kind === 'invalid-token') {
          ctx.store.updateTokenInfo(fp, { checkedAt: ctx.nowIso(), state: 'invalid' });
          out.push({ fingerprint: fp, ok: false, kind: 'invalid', wasInvalid: row?.state === 'invalid', error: `token ${fp} is invalid or revoked (401)` });
        } else {
          const kind = e instanceof ApiError && !e.transient ? 'error' : 'unreachable';
          out.push({ fingerprint: fp, ok: false, kind, error: e instanceof Error ? e.message : String(e) });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, list.length) }, worker));
  return out;
}

export interface ScanReport {
  configs: Array<{ path: string; client: string; format: string; status: 'ok' | 'error'; error?: string; hint?: string; tokens: string[] }>;
  tokens: StatusToken[];
  warnings: string[];
}

/** `scan`: discover, record, ask the API; one broken config never blocks the others. */
export async function runScan(ctx: Context, opts: { network?: boolean } = {}): Promise<ScanReport> {
  const result = await findTokens(ctx);
  recordScan(ctx, result);
  const warnings: string[] = [];
  // Tokens that broker mode keeps only in its store are tracked all the same.
  const { slotTokens } = await import('./broker/locations.js');
  const brokered = opts.network !== false ? await slotTokens(ctx, result.tokens) : new Map<string, Secret>();
  if (opts.network !== false && result.tokens.size + brokered.size) {
    const outcomes = await inspectTokens(ctx, [...[...result.tokens].map(([fp, t]) => [fp, t.secret] as [string, Secret]), ...brokered]);
    for (const o of outcomes) if (!o.ok && o.error) warnings.push(o.error);
  }
  for (const [fp] of result.tokens) {
    const row = ctx.store.getToken(fp);
    if (row?.state === 'retired') {
      const cur = ctx.store.currentSuccessor(fp);
      warnings.push(
        `token ${fp} was retired${cur ? ` and replaced by ${cur}` : ''}, but a config still holds it; ` +
          `run "mcp-token-rotator daemon" (it heals such files where the token lived before, if private and outside git) or "mcp-token-rotator set-token" with the current token.`,
      );
    }
  }
  return {
    configs: result.configs.map((c) => ({
      path: c.candidate.path,
      client: c.candidate.client,
      format: c.candidate.format,
      status: c.status,
      ...(c.error ? { error: c.error.message, ...(c.error.hint ? { hint: c.error.hint } : {}) } : {}),
      tokens: [...new Set(c.sites.map((s) => new Secret(s.token).fingerprint))],
    })),
    tokens: buildStatus(ctx),
    warnings,
  };
}
