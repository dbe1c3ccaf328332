/**
 * Certorix (contract: "The problem", "The Certorix REST API"): the token sits in
 * CERTORIX_API_TOKEN, or in an `Authorization: Bearer` header (or an mcp-remote bridge's
 * argument) for a host under certorix.com or named in settings `mcpHosts`. Regenerated
 * with an Idempotency-Key, so a lost answer is replayed safely.
 */
import type { ClientOptions, EntryClaim, EntryView, ProviderClient, ProviderModule } from '../types.js';

export const CERTORIX_ENV = 'CERTORIX_API_TOKEN';
export const DEFAULT_CERTORIX_API_URL = 'https://api.certorix.com';

/** A host name as compared: lower case, no trailing dot, no IPv6 brackets. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** The host of an http(s) URL, normalised; undefined for anything else. */
export function urlHost(value: string): string | undefined {
  if (!/^https?:\/\//i.test(value.trim())) return undefined;
  try {
    return normalizeHost(new URL(value.trim()).hostname);
  } catch {
    return undefined;
  }
}

/**
 * Whether a URL goes to Certorix: a host under certorix.com, or one named exactly in
 * settings `mcpHosts` (a regional or company gateway, a local stand-in). Only then is a
 * bearer sent to it ours to rotate; a bearer for any other host is someone else's secret.
 */
export function isCertorixUrl(value: string, mcpHosts: readonly string[] = []): boolean {
  const host = urlHost(value);
  if (host === undefined) return false;
  if (host === 'certorix.com' || host.endsWith('.certorix.com')) return true;
  return mcpHosts.some((h) => normalizeHost(h) === host);
}

export const certorix: ProviderModule = {
  name: 'certorix',
  label: 'Certorix',
  rotate: 'regenerate-idempotent',
  envVar: CERTORIX_ENV,
  shellVars: [CERTORIX_ENV],
  apiUrlEnv: 'CERTORIX_API_URL',
  defaultApiUrl: DEFAULT_CERTORIX_API_URL,
  tellsCreationDate: true,
  tokenPrefixes: [],

  claim(entry: EntryView, opts): EntryClaim | null {
    const envVars = entry.env.has(CERTORIX_ENV) ? [CERTORIX_ENV] : [];
    const bearer = entry.kind === 'mcp' && entry.url !== undefined && isCertorixUrl(entry.url, opts.mcpHosts ?? []);
    return envVars.length || bearer ? { envVars, bearer } : null;
  },

  apiBase: (input) => input.settings.apiUrl,

  tokenPage: () => 'the Certorix web UI (MCP / API page)',

  async createClient(opts: ClientOptions): Promise<ProviderClient> {
    const { createCertorixProvider } = await import('./api.js');
    return createCertorixProvider(opts);
  },
};
