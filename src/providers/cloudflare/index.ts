/**
 * Cloudflare user API tokens (contract: "More providers than Certorix"). The token sits in
 * CLOUDFLARE_API_TOKEN (any entry, and shell/.env files); the API base is
 * CLOUDFLARE_API_URL / settings `apiUrls.cloudflare`, default api.cloudflare.com. Rotated by
 * rolling the secret (needs "API Tokens Write"); no idempotency, so a roll whose answer was
 * lost is never sent again ('rotate-no-idempotency').
 */
import type { ClientOptions, EntryClaim, EntryView, ProviderClient, ProviderModule } from '../types.js';

export const CLOUDFLARE_ENV = 'CLOUDFLARE_API_TOKEN';
export const DEFAULT_CLOUDFLARE_API_URL = 'https://api.cloudflare.com/client/v4';
export const CLOUDFLARE_TOKEN_PAGE = 'https://dash.cloudflare.com/profile/api-tokens';

export const cloudflare: ProviderModule = {
  name: 'cloudflare',
  label: 'Cloudflare',
  rotate: 'rotate-no-idempotency',
  envVar: CLOUDFLARE_ENV,
  shellVars: [CLOUDFLARE_ENV],
  apiUrlEnv: 'CLOUDFLARE_API_URL',
  defaultApiUrl: DEFAULT_CLOUDFLARE_API_URL,
  tellsCreationDate: false,
  // None declared: older tokens (still common, they need not expire) are 40 bare characters, and a
  // declared prefix would exclude them wherever several providers' tokens could be replaced.
  tokenPrefixes: [],

  claim(entry: EntryView): EntryClaim | null {
    return entry.env.has(CLOUDFLARE_ENV) ? { envVars: [CLOUDFLARE_ENV], bearer: false } : null;
  },

  apiBase: (input) => input.settings.apiUrls?.cloudflare || DEFAULT_CLOUDFLARE_API_URL,

  tokenPage: () => CLOUDFLARE_TOKEN_PAGE,

  async createClient(opts: ClientOptions): Promise<ProviderClient> {
    const { createCloudflareClient } = await import('./api.js');
    return createCloudflareClient(opts);
  },
};
