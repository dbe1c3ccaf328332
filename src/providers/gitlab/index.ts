/**
 * GitLab personal access tokens (contract: "More providers than Certorix"). The token sits
 * in GITLAB_PERSONAL_ACCESS_TOKEN (any entry, and shell/.env files); the entry's own
 * GITLAB_API_URL names a self-managed instance (checked: https, or http on loopback),
 * default gitlab.com. Rotated by self-rotate, keeping the lifetime; GitLab has no
 * idempotency and revokes the new token when a rotate is repeated with the old one, so a
 * rotate whose answer was lost is never sent again ('rotate-no-idempotency').
 */
import type { ClientOptions, EntryClaim, EntryView, ProviderClient, ProviderModule } from '../types.js';

export const GITLAB_ENV = 'GITLAB_PERSONAL_ACCESS_TOKEN';
export const GITLAB_URL_ENV = 'GITLAB_API_URL';
export const DEFAULT_GITLAB_API_URL = 'https://gitlab.com/api/v4';

/** `<host>/-/user_settings/personal_access_tokens` for an API base `<host>[/prefix]/api/v4`. */
export function gitlabTokenPage(apiBase: string): string {
  try {
    const u = new URL(apiBase);
    const root = u.pathname.replace(/\/+$/, '').replace(/\/api\/v4$/, '');
    return `${u.origin}${root}/-/user_settings/personal_access_tokens`;
  } catch {
    return 'https://gitlab.com/-/user_settings/personal_access_tokens';
  }
}

export const gitlab: ProviderModule = {
  name: 'gitlab',
  label: 'GitLab',
  rotate: 'rotate-no-idempotency',
  envVar: GITLAB_ENV,
  shellVars: [GITLAB_ENV],
  defaultApiUrl: DEFAULT_GITLAB_API_URL,
  tellsCreationDate: true,
  // Every personal access token since GitLab 14.5 (older ones have all expired: GitLab 16 enforces at
  // most a year). An instance's admin may set another prefix; `set-token --fingerprint` still works then.
  tokenPrefixes: ['glpat-'],

  claim(entry: EntryView): EntryClaim | null {
    if (!entry.env.has(GITLAB_ENV)) return null;
    const own = entry.env.get(GITLAB_URL_ENV)?.trim();
    return { envVars: [GITLAB_ENV], bearer: false, ...(own ? { apiUrl: own } : {}) };
  },

  // The entry's own instance first: its token belongs there and nowhere else.
  apiBase: (input) => input.entryApiUrl?.trim() || input.settings.apiUrls?.gitlab || DEFAULT_GITLAB_API_URL,

  tokenPage: gitlabTokenPage,

  async createClient(opts: ClientOptions): Promise<ProviderClient> {
    const { createGitLabClient } = await import('./api.js');
    return createGitLabClient(opts);
  },
};
