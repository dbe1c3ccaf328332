/**
 * The provider registry: every provider this build knows, in a fixed order (the first
 * claimant of a value wins, so the order is part of attribution). Light: the modules here
 * are pure recognition; their HTTP clients load only when a call is made.
 * See src/providers/types.ts for the design.
 */
import { certorix } from './certorix/index.js';
import { github } from './github/index.js';
import { gitlab } from './gitlab/index.js';
import { cloudflare } from './cloudflare/index.js';
import type { ClaimOptions, EntryClaim, EntryView, ProviderModule, ProviderName } from './types.js';

export type { ProviderModule, ProviderName } from './types.js';
export { PROVIDER_NAMES } from './types.js';

/** Adding a provider: one line here (and its name in types.ts's PROVIDER_NAMES). */
export const PROVIDERS: readonly ProviderModule[] = [certorix, github, gitlab, cloudflare];

export function providerModule(name: string): ProviderModule | undefined {
  return PROVIDERS.find((p) => p.name === name);
}

/** The providers settings leave on (`providers: { "<name>": false }` turns one off). */
export function enabledProviders(toggles: Partial<Record<string, boolean>> | undefined): ProviderModule[] {
  return PROVIDERS.filter((p) => toggles?.[p.name] !== false);
}

export interface EntryClaims {
  /** Env variable -> the provider whose token it holds (first claimant wins). */
  env: Map<string, ProviderName>;
  /** The provider whose token an `Authorization: Bearer` to the entry's URL is, if any. */
  bearer?: ProviderName;
  /** Per provider: the API base the entry names for itself. */
  apiUrls: Map<ProviderName, string>;
}

/** Asks each provider about one entry. Pure. */
export function claimEntry(entry: EntryView, providers: readonly ProviderModule[], opts: ClaimOptions): EntryClaims {
  const out: EntryClaims = { env: new Map(), apiUrls: new Map() };
  for (const p of providers) {
    const c: EntryClaim | null = p.claim(entry, opts);
    if (!c) continue;
    for (const v of c.envVars) if (!out.env.has(v)) out.env.set(v, p.name);
    if (c.bearer && out.bearer === undefined) out.bearer = p.name;
    if (c.apiUrl !== undefined) out.apiUrls.set(p.name, c.apiUrl);
  }
  return out;
}

/**
 * `set-token` without --fingerprint: which of the providers whose tokens the configs hold
 * the piped token can be for. A token carrying a provider's documented prefix is for that
 * provider only (even when no entry of it exists: then nothing); otherwise one provider
 * present is that one, and among several, those without prefixes. The token is then checked with that provider only, so
 * it never reaches an API the user did not put it for. Pure.
 */
export function setTokenProviders(token: string, present: readonly string[]): string[] {
  const uniq = [...new Set(present)];
  // A token carrying a provider's prefix (a `ghp_...` piped by mistake) is never sent elsewhere.
  const owners = PROVIDERS.filter((p) => p.tokenPrefixes.some((pre) => token.startsWith(pre))).map((p) => p.name as string);
  if (owners.length) return uniq.filter((n) => owners.includes(n));
  if (uniq.length <= 1) return uniq;
  return uniq.filter((n) => (providerModule(n)?.tokenPrefixes.length ?? 0) === 0);
}

/** Shell start-up and .env files: variable name -> provider, for the enabled providers. */
export function shellVariables(providers: readonly ProviderModule[]): Map<string, ProviderName> {
  const out = new Map<string, ProviderName>();
  for (const p of providers) for (const v of p.shellVars) if (!out.has(v)) out.set(v, p.name);
  return out;
}
