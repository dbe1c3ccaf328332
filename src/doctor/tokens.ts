/** Token checks: admin role, invalid, due or unfinished, retired tokens still in configs. */
import type { PublicState } from '../rotation/policy.js';
import { ADMIN_ADVICE, type Finding } from './finding.js';

export interface TokenFacts {
  fingerprint: string;
  role: string | null;
  state: PublicState;
  /** null while the API has not told the creation date. */
  ageDays: number | null;
  /** Days since first seen: a lower bound when the age is unknown. */
  minAgeDays?: number;
  files: string[];
  /** Absent: Certorix (as before providers). */
  provider?: string;
  /** The provider's label for messages ("GitHub"). */
  label?: string;
  /** Where the user makes a new token (the provider's page). */
  page?: string;
  /** GitHub: 'classic' or 'fine-grained', as the API's answer showed. */
  tokenKind?: string | null;
  expiresAt?: string | null;
}

/**
 * GitHub classic scopes that reach far beyond what an MCP server needs to read and comment:
 * repository administration, deletion, organisation and account administration, workflows,
 * packages. A fine-grained token limited to the repositories it needs would do.
 */
export const BROAD_GITHUB_SCOPES = new Set([
  'repo',
  'admin:org',
  'admin:repo_hook',
  'admin:org_hook',
  'admin:public_key',
  'admin:gpg_key',
  'admin:ssh_signing_key',
  'admin:enterprise',
  'delete_repo',
  'delete:packages',
  'write:packages',
  'workflow',
  'user',
  'site_admin',
  'codespace',
  'project',
]);

/** A GitHub classic token whose scopes (X-OAuth-Scopes, as the API said) are broad. */
export function checkGitHubScopes(t: TokenFacts): Finding | null {
  if (t.provider !== 'github' || t.role === null) return null;
  const where = t.files.join(', ') || 'no config any more';
  if (t.tokenKind !== 'classic') {
    return { id: 'github-token-kind', severity: 'ok', fingerprint: t.fingerprint, message: `GitHub token ${t.fingerprint} is ${t.tokenKind === 'fine-grained' ? 'fine-grained' : `of kind ${t.tokenKind ?? 'unknown'}`}.`, fix: '' };
  }
  const scopes = t.role === '(no scopes)' ? [] : t.role.split(',').map((s) => s.trim());
  const broad = scopes.filter((s) => BROAD_GITHUB_SCOPES.has(s));
  if (!broad.length) return { id: 'github-token-kind', severity: 'ok', fingerprint: t.fingerprint, message: `GitHub token ${t.fingerprint} is a classic token with narrow scopes (${scopes.join(', ') || 'none'}).`, fix: '' };
  return {
    id: 'github-classic-broad',
    severity: 'warn',
    fingerprint: t.fingerprint,
    message: `GitHub token ${t.fingerprint} is a classic personal access token with broad scopes (${broad.join(', ')}), used for MCP (${where}); the MCP server can do all of that with it.`,
    fix: `Make a fine-grained token limited to the repositories and permissions the MCP server needs at ${t.page ?? 'https://github.com/settings/tokens'}, delete this one there, then: mcp-token-rotator set-token --fingerprint ${t.fingerprint} < new-token.txt`,
  };
}

const UNKNOWN_AGE_FIX = 'Run "mcp-token-rotator scan" (it asks the API), or keep the daemon running (it asks at start and at each check).';

/** Admin tokens in MCP configs: the MCP server can do all an admin can. */
export function checkTokenRole(t: TokenFacts): Finding | null {
  const where = t.files.join(', ') || 'no config any more';
  if (t.provider !== undefined && t.provider !== 'certorix') return checkGitHubScopes(t);
  if (t.role === 'admin') {
    return {
      id: 'admin-token',
      severity: 'warn',
      fingerprint: t.fingerprint,
      message: `Token ${t.fingerprint} has the admin role and is used for MCP (${where}).`,
      fix: `${ADMIN_ADVICE} Then adopt the new token everywhere: mcp-token-rotator set-token --fingerprint ${t.fingerprint} < new-token.txt`,
    };
  }
  if (t.role === null) return null;
  return { id: 'token-role', severity: 'ok', fingerprint: t.fingerprint, message: `Token ${t.fingerprint} has the ${t.role} role.`, fix: '' };
}

/** Invalid, due or mid-rotation tokens: each with the command that deals with it. */
export function checkTokenState(t: TokenFacts, warnAfterDays: number): Finding {
  const where = t.files.join(', ') || 'no config any more';
  const base = { fingerprint: t.fingerprint };
  switch (t.state) {
    case 'invalid':
      return {
        ...base,
        id: 'token-invalid',
        severity: 'warn',
        message: `${t.label && t.provider !== 'certorix' ? `${t.label} token` : 'Token'} ${t.fingerprint} is invalid or revoked (the API answered 401); the MCP clients using it (${where}) are broken.`,
        fix: `Regenerate it in ${t.page ?? 'the Certorix web UI (MCP / API page)'}, then: mcp-token-rotator set-token --fingerprint ${t.fingerprint} < new-token.txt`,
      };
    case 'due':
      if (t.provider !== undefined && t.provider !== 'certorix' && t.expiresAt) {
        return {
          ...base,
          id: 'token-expiring',
          severity: 'warn',
          message: `${t.label ?? t.provider} token ${t.fingerprint} expires on ${t.expiresAt} (${where}).`,
          fix: t.provider === 'github' ? `Make a new one at ${t.page ?? 'https://github.com/settings/tokens'}, then: mcp-token-rotator set-token --fingerprint ${t.fingerprint} < new-token.txt` : `mcp-token-rotator rotate --fingerprint ${t.fingerprint}`,
        };
      }
      return {
        ...base,
        id: 'token-due',
        severity: 'warn',
        message:
          t.ageDays === null
            ? `Token ${t.fingerprint} is at least ${t.minAgeDays ?? warnAfterDays} days old (first seen then; its creation date is not known yet); Certorix asks for rotation every ${warnAfterDays} days.`
            : `Token ${t.fingerprint} is ${t.ageDays} days old; Certorix asks for rotation every ${warnAfterDays} days.`,
        fix: `mcp-token-rotator rotate --fingerprint ${t.fingerprint}`,
      };
    case 'rotating':
      return {
        ...base,
        id: 'token-rotating',
        severity: 'warn',
        message: `A rotation of token ${t.fingerprint} is unfinished.`,
        fix: 'Run "mcp-token-rotator status" once the API is reachable; any command finishes it.',
      };
    default:
      if (t.ageDays === null && t.provider !== undefined && t.provider !== 'certorix') {
        return { ...base, id: 'token-age', severity: 'ok', message: `${t.label ?? t.provider} token ${t.fingerprint}: ${t.expiresAt ? `expires on ${t.expiresAt}` : 'no expiry told'}.`, fix: '' };
      }
      if (t.ageDays === null) {
        return {
          ...base,
          id: 'token-age-unknown',
          severity: 'warn',
          message: `The age of token ${t.fingerprint} is unknown: the API has not told its creation date yet, so the ${warnAfterDays}-day warning cannot come on time.`,
          fix: UNKNOWN_AGE_FIX,
        };
      }
      return { ...base, id: 'token-age', severity: 'ok', message: `Token ${t.fingerprint} is ${t.ageDays} days old (rotate at ${warnAfterDays}).`, fix: '' };
  }
}

/**
 * A token a config still holds after it was retired: that client is broken. The daemon
 * heals it (puts the current token back) in a place the token lived before, in a private
 * file outside git; anywhere else it is left alone: see checkRetiredPlanted.
 */
export function checkRetiredInConfig(fp: string, successor: string | null, files: string[]): Finding {
  return {
    id: 'token-retired-in-config',
    severity: 'warn',
    fingerprint: fp,
    message: `Retired token ${fp}${successor ? ` (replaced by ${successor})` : ''} is still in ${files.join(', ')}; that client fails to authenticate.`,
    fix: 'Run "mcp-token-rotator daemon" (it heals such files), or pipe the current token to "mcp-token-rotator set-token".',
  };
}

/**
 * A retired token in a file the daemon will not heal (it never held the token, others can
 * read it, another user owns it, or it is in a git work tree): possibly planted to be handed
 * the live token. `seenAt`: when the daemon first refused it, if it recorded that.
 */
export function checkRetiredPlanted(fp: string, file: string, message: string, fix: string, seenAt: string | null): Finding {
  return {
    id: 'token-retired-unexpected',
    severity: 'warn',
    file,
    fingerprint: fp,
    message: `${message}${seenAt ? ` The daemon saw it there at ${seenAt}.` : ''}`,
    fix,
  };
}
