/**
 * The environment every child process gets (hooks, notify-send/osascript, git, systemctl,
 * launchctl, lsblk, ...): the tool's own environment without CERTORIX_API_TOKEN or any other
 * variable whose name looks like a secret. A child has no business with the user's tokens,
 * and a hook's output, a crash report or `ps e` would otherwise show them.
 */

/** Names that hold credentials by convention. Matched case-insensitively on the whole name. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|(^|_)AUTH(_|$)|AUTHORIZATION|AUTHTOKEN|COOKIE|SESSION_?KEY|(^|_)PAT$/i;

/**
 * Look like secrets by name but are not, and children need them: an agent socket (git over
 * ssh), the X authority file (a hook that restarts a GUI client).
 */
const NOT_SECRET = new Set(['SSH_AUTH_SOCK', 'XAUTHORITY', 'GIT_ASKPASS', 'SSH_ASKPASS']);

export function isSecretName(name: string): boolean {
  return !NOT_SECRET.has(name.toUpperCase()) && SECRET_NAME.test(name);
}

/** Pure: `base` less the secret-looking variables, plus `extra` (which is trusted as given). */
export function childEnv(base: NodeJS.ProcessEnv, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined || isSecretName(k)) continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}
