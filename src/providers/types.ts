/**
 * Providers: the services whose tokens sit in MCP configs (Certorix, GitHub, GitLab,
 * Cloudflare). One module per provider under `src/providers/<name>/`, listed by the
 * registry (`src/providers/index.ts`); settings `providers: { "<name>": false }` turns one off.
 *
 * The story of a token:
 *
 * 1. Attribution, by entry and never by shape. The locators (src/clients/formats.ts for
 *    JSON/TOML/YAML, locate-shell.ts for shell start-up and .env files) turn each server
 *    entry into an `EntryView` (name, command, args, image, url, env, header names, file
 *    kind) and ask every enabled provider's `claim(entry)`: which of the entry's env
 *    variables hold its token, and whether an `Authorization: Bearer` sent to the entry's
 *    URL is its token. A value is a token of provider P only because an entry P claims
 *    holds it there: a `ghp_...` under an unrelated variable of an unrelated server is
 *    nobody's token. Shell and .env lines are entries too (kind 'shell'/'dotenv', no name,
 *    no command): a provider claims the variables in `shellVars` there. Each site found
 *    carries its provider, the variable it sits in (for broker mode's hand-over) and, for
 *    a provider whose API base lives in the entry (GitLab's GITLAB_API_URL), that base.
 *
 * 2. Recording. The store keeps each token's provider, API base (when it came from the
 *    entry) and what `inspect` said: account, role or scopes, created and expiry dates.
 *    Due = age >= warnAfterDays, or expiry within warnBeforeExpiryDays.
 *
 * 3. What the engine asks of a provider (`ProviderClient`, one per provider and API base):
 *    - `inspect(token)`: alive (200), dead (ApiError 'invalid-token'), or unreachable
 *      ('transient'); who, created/expiry, role or scopes.
 *    - `regenerate(token, key)` only when `rotate` is not 'none'. With
 *      'regenerate-idempotent' (Certorix) the call carries the journaled Idempotency-Key, so
 *      a lost answer is replayed safely. With 'rotate-no-idempotency' (GitLab, Cloudflare) a
 *      call whose answer was lost is NEVER sent again, by a retry or a later command: the
 *      engine journals 'calling' before the call and ends the row as lost if it finds it
 *      there (src/rotation/machine.ts); the user is sent to `tokenPage` and `set-token`.
 *    - With 'none' (GitHub), `rotate` refuses with the token page and `set-token`.
 *
 * 4. Where a token may go. Only to its own provider's API base (`apiBase`: a settings or
 *    environment override, the entry's own base, or the default), checked by
 *    validateApiUrl (https, or http on loopback). `clientFor(row)` in the context picks the
 *    client by the token's recorded provider, never by a guess; set-token checks a new token
 *    with the provider of the entry it replaces.
 *
 * 5. Broker mode hands the token to a wrapped stdio server in the entry's own variable
 *    (the site's `envVar`, else the provider's `envVar`).
 *
 * Adding a provider: a directory with `index.ts` (the `ProviderModule`: pure recognition,
 * light imports, since every locate loads it) and `api.ts` (the HTTP client, loaded only
 * when a call is made), a fake in test/fake/, and one line in the registry.
 */
import type { Secret } from '../secret.js';

/** Every provider this build knows; the settings schema accepts exactly these under `providers`. */
export const PROVIDER_NAMES = ['certorix', 'github', 'gitlab', 'cloudflare'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/**
 * - 'regenerate-idempotent': a regenerate call carries an Idempotency-Key; a lost answer is
 *   replayed with the same key (Certorix).
 * - 'rotate-no-idempotency': the API rotates but a repeat would do harm (GitLab's repeat with
 *   the revoked token revokes the new one; Cloudflare rolls again): one call, never repeated.
 * - 'none': no API can mint a new token (GitHub personal access tokens).
 */
export type RotateCapability = 'regenerate-idempotent' | 'rotate-no-idempotency' | 'none';

export type FileKind = 'mcp' | 'shell' | 'dotenv';

/** A server entry as a provider sees it. Values of token variables are never needed to claim. */
export interface EntryView {
  kind: FileKind;
  /** Server/extension name; '' for shell and .env files. */
  server: string;
  command?: string;
  args: readonly string[];
  /** A container image named by the entry (some clients have an `image` key). */
  image?: string;
  /** The entry's URL (url, serverUrl, httpUrl, uri); for an mcp-remote bridge, the URL it connects to. */
  url?: string;
  /** The entry's env (string values only); for shell/.env files, the variables the file sets. */
  env: ReadonlyMap<string, string>;
}

export interface EntryClaim {
  /** Env variables of this entry (or lines of this shell file) that hold the provider's token. */
  envVars: readonly string[];
  /** Whether an `Authorization: Bearer` header to the entry's URL carries the provider's token. */
  bearer: boolean;
  /** The entry names its own API base (GitLab's GITLAB_API_URL); checked before use. */
  apiUrl?: string;
}

/** What a provider's claim may depend on beyond the entry (settings, e.g. Certorix's mcpHosts). */
export interface ClaimOptions {
  mcpHosts?: readonly string[];
}

export interface TokenInfo {
  /** The provider's id of the token (or of the account where the API has no token id). */
  id: string;
  /** Certorix's role, or a short summary of scopes ("repo, read:org"), or '' when unknown. */
  role: string;
  /** Who: e-mail or login. */
  email?: string;
  /** ISO 8601, normalised to UTC; absent when the API does not tell it. */
  createdAt?: string;
  /** ISO 8601; null: the token does not expire; absent: the API did not say. */
  expiresAt?: string | null;
  /** Scopes as the API lists them, when it does (GitHub classic's X-OAuth-Scopes, GitLab's scopes). */
  scopes?: string[];
  /** A fine-grained token (GitHub `github_pat_`), a classic one, or unknown. */
  tokenKind?: string;
}

export interface RegenerateResult {
  token: Secret;
  id: string;
  /** ISO 8601, normalised to UTC. */
  createdAt?: string;
  /** ISO 8601; null when the new token does not expire. */
  expiresAt?: string | null;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RegenerateOptions extends CallOptions {
  /** What is recorded of the old token: GitLab keeps its lifetime (expires_at - created_at). */
  previous?: { createdAt?: string | null; expiresAt?: string | null };
  now?: Date;
}

/** The API client of one provider at one base URL. Failures reject with ApiError, classified. */
export interface ProviderClient {
  readonly name: string;
  inspect(token: Secret, opts?: CallOptions): Promise<TokenInfo>;
  /**
   * Mints the replacement; the old token dies the moment the server acts. Callers journal
   * `idempotencyKey` first. Absent where the provider cannot rotate ('none').
   */
  regenerate?(token: Secret, idempotencyKey: string, opts?: RegenerateOptions): Promise<RegenerateResult>;
  close(): Promise<void>;
}

/** Kept for the Certorix client's old name. */
export type Provider = ProviderClient & { regenerate(token: Secret, idempotencyKey: string, opts?: RegenerateOptions): Promise<RegenerateResult> };

export interface ClientOptions {
  apiUrl: string;
  timeoutMs?: number;
  userAgent?: string;
}

/** Where a provider's API base comes from, most specific first. */
export interface ApiBaseInput {
  /** The entry's own base (EntryClaim.apiUrl), as recorded with the token. */
  entryApiUrl?: string | null;
  /** Settings (`apiUrl` for Certorix, `apiUrls.<name>` for the others), env overrides already applied. */
  settings: { apiUrl: string; apiUrls?: Partial<Record<ProviderName, string>> };
}

export interface ProviderModule {
  readonly name: ProviderName;
  /** For messages: "Certorix", "GitHub". */
  readonly label: string;
  readonly rotate: RotateCapability;
  /** The variable the broker wrapper hands the token in when the entry names none. */
  readonly envVar: string;
  /** Variables that hold this provider's token in shell start-up and .env files. */
  readonly shellVars: readonly string[];
  /** Env variables that override the API base (documented; applied when settings load). */
  readonly apiUrlEnv?: string;
  readonly defaultApiUrl: string;
  /**
   * Prefixes every token of this provider carries (GitHub's `ghp_`, GitLab's `glpat-`);
   * empty when it has none (Certorix). Never used to attribute a value to a provider: only
   * to pick, among the entries `set-token` could replace, those a piped token can be for.
   */
  readonly tokenPrefixes: readonly string[];
  /** Whether its API tells a token's creation date (else `ageDays` stays null). */
  readonly tellsCreationDate: boolean;
  /** Pure and cheap: which parts of this entry hold the provider's token, or null. */
  claim(entry: EntryView, opts: ClaimOptions): EntryClaim | null;
  apiBase(input: ApiBaseInput): string;
  /** The web page where the user makes a new token (for refusals and set-token advice). */
  tokenPage(apiBase: string): string;
  /** Loads the HTTP client lazily (its module only when a call is made). */
  createClient(opts: ClientOptions): Promise<ProviderClient>;
}
