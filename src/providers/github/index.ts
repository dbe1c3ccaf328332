/**
 * GitHub personal access tokens (contract: "More providers than Certorix"). The token sits
 * in GITHUB_PERSONAL_ACCESS_TOKEN (any entry, and shell/.env files), in GITHUB_TOKEN only in
 * a GitHub MCP server entry, or in the `Authorization: Bearer` header of the remote server
 * at api.githubcopilot.com. No API mints a new PAT, so `rotate` refuses with the token page
 * and `set-token` puts a token made on the web everywhere.
 */
import { urlHost } from '../certorix/index.js';
import type { ClientOptions, EntryClaim, EntryView, ProviderClient, ProviderModule } from '../types.js';

export const GITHUB_PAT_ENV = 'GITHUB_PERSONAL_ACCESS_TOKEN';
export const GITHUB_TOKEN_ENV = 'GITHUB_TOKEN';
export const DEFAULT_GITHUB_API_URL = 'https://api.github.com';
export const GITHUB_REMOTE_HOST = 'api.githubcopilot.com';

const SERVER_MARKS = ['github-mcp-server', 'server-github', GITHUB_REMOTE_HOST];

/** "Whose command, args, image or url names github-mcp-server, server-github or api.githubcopilot.com." */
export function isGitHubServerEntry(entry: EntryView): boolean {
  const names = (s: string | undefined): boolean => s !== undefined && SERVER_MARKS.some((m) => s.toLowerCase().includes(m));
  return entry.kind === 'mcp' && (names(entry.command) || names(entry.image) || names(entry.url) || entry.args.some(names));
}

export const github: ProviderModule = {
  name: 'github',
  label: 'GitHub',
  rotate: 'none',
  envVar: GITHUB_PAT_ENV,
  shellVars: [GITHUB_PAT_ENV],
  apiUrlEnv: 'GITHUB_API_URL',
  defaultApiUrl: DEFAULT_GITHUB_API_URL,
  tellsCreationDate: false,
  // Personal (classic, fine-grained), OAuth (gh auth token), user-to-server, server-to-server, refresh.
  tokenPrefixes: ['ghp_', 'github_pat_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],

  claim(entry: EntryView): EntryClaim | null {
    const envVars: string[] = [];
    if (entry.env.has(GITHUB_PAT_ENV)) envVars.push(GITHUB_PAT_ENV);
    if (entry.kind === 'mcp' && entry.env.has(GITHUB_TOKEN_ENV) && isGitHubServerEntry(entry)) envVars.push(GITHUB_TOKEN_ENV);
    const bearer = entry.kind === 'mcp' && entry.url !== undefined && urlHost(entry.url) === GITHUB_REMOTE_HOST;
    return envVars.length || bearer ? { envVars, bearer } : null;
  },

  apiBase: (input) => input.settings.apiUrls?.github ?? DEFAULT_GITHUB_API_URL,

  /**
   * github.com's page for api.github.com; an Enterprise Server's for `https://HOST/api/v3`,
   * GHE.com's for `https://api.SUB.ghe.com`. A loopback stand-in (tests) gets github.com's.
   */
  tokenPage(apiBase: string): string {
    let u: URL;
    try {
      u = new URL(apiBase);
    } catch {
      return 'https://github.com/settings/tokens';
    }
    const host = u.hostname.toLowerCase();
    if (u.protocol === 'https:' && /\/api\/v3\/?$/.test(u.pathname)) return `${u.origin}/settings/tokens`;
    if (u.protocol === 'https:' && /^api\.[^.]+\.ghe\.com$/.test(host)) return `https://${host.slice(4)}/settings/tokens`;
    return 'https://github.com/settings/tokens';
  },

  async createClient(opts: ClientOptions): Promise<ProviderClient> {
    const { createGitHubClient } = await import('./api.js');
    return createGitHubClient(opts);
  },
};
