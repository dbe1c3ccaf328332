import { COMMON, type CommandSpec } from './spec.js';
import { EXEC_SPEC, HEADERS_SPEC } from './broker-child-specs.js';

// The types and one command's help live in spec.ts, so the small `exec` and `headers` bundles
// (scripts/bundle.mjs, src/cli/entry-*.ts) carry them without this list and every command behind it.
export type { Values, CommandModule, CommandSpec } from './spec.js';
export { commandHelp } from './spec.js';

export const COMMANDS: CommandSpec[] = [
  {
    name: 'scan',
    summary: 'Find MCP client configs holding tokens (Certorix, GitHub, GitLab, Cloudflare); record them; ask each provider for age and expiry.',
    usage: 'scan [--offline]',
    details: `Reads every client config in the catalog (Claude Desktop, Claude Code, Cursor, VS Code,
Windsurf, Zed, Gemini CLI, Codex, Cline, Roo, LM Studio, Continue, Goose), your shell
start-up files and the files named by "extraConfigs", records each token by fingerprint,
and asks GET /v1/token for each token's created_at and role. A config that cannot be read
or parsed is reported and left alone.
  --offline        Do not call the API.
JSON: { "configs": [...], "tokens": [...], "warnings": [...] }. Exit 0, or 2 if a config could not be read.`,
    options: { offline: { type: 'boolean' } },
    load: () => import('./commands/scan.js'),
  },
  {
    name: 'status',
    summary: 'Show each token: fingerprint, role, age, state, where it is (offline, from what is recorded).',
    usage: 'status [--verbose] [--forget FP]',
    details: `Works offline from what "scan" (or the daemon) recorded; the first run scans.
Exit codes (monitoring style): 0 all fine, 1 a token is due (age >= warnAfterDays),
2 a token is invalid or a rotation is unfinished.
JSON: { "tokens": [ { "fingerprint", "provider", "role", "createdAt", "firstSeenAt", "ageDays",
"state": "ok"|"due"|"invalid"|"rotating", "locations": [ { "path", "client" } ] } ],
"replacedStillAlive": [ { "fingerprint", "replacedBy", "replacedAt", "aliveAt" } ] }: tokens set-token
replaced while the API still accepted them; revoke them in the web UI (the exit code ignores them).
"ageDays" is null (the table shows ?) until the API has told the creation date: run "scan", or the daemon.
Also exit 2, and shown with the fix: an unfinished rotation ("unfinishedRotations", with the command
that finishes it) and a tracked config that cannot be parsed any more ("brokenConfigs"). Never calls the API.
WHERE groups the files by client with counts, fitted to the terminal width (COLUMNS, else the TTY's).
Colours on a terminal only; NO_COLOR turns them off, FORCE_COLOR forces them.
  --verbose        List every file, one per line.
  --forget FP      You revoked FP in the web UI (or keep it on purpose): stop listing it there.`,
    options: { forget: { type: 'string' }, verbose: { type: 'boolean' } },
    load: () => import('./commands/status.js'),
  },
  {
    name: 'rotate',
    summary: 'Regenerate tokens now and rewrite every config that holds them.',
    usage: 'rotate [--fingerprint FP] [--if-due] [--dry-run]',
    details: `All tracked tokens unless --fingerprint; only due ones with --if-due.
  --fingerprint FP Rotate only this token (12 hex characters, as "status" shows).
  --if-due         Only tokens whose age >= warnAfterDays.
  --dry-run        Plan and print, and check each token with the API (GET /v1/token, never
                   regenerate); write nothing. Exit 2 when the API cannot be reached or a token is dead.`,
    options: { fingerprint: { type: 'string' }, 'if-due': { type: 'boolean' }, 'dry-run': { type: 'boolean' } },
    load: () => import('./commands/rotate.js'),
  },
  {
    name: 'revoke-now',
    summary: '"Revoke all now" after a leak: regenerate every tracked token at once and rewrite every config.',
    usage: 'revoke-now --yes',
    details: `Without --yes it asks on a terminal (answering no exits 0: nothing was done) and refuses
without one (exit 64). A retired token that a config still holds is checked with
GET /v1/token and regenerated too if it still works.
  --yes            Do not ask.`,
    options: { yes: { type: 'boolean', short: 'y' } },
    load: () => import('./commands/revoke-now.js'),
  },
  {
    name: 'set-token',
    summary: 'Adopt a token regenerated elsewhere (the web UI): read it from stdin, check it, put it everywhere.',
    usage: 'set-token [--fingerprint FP] < token.txt',
    details: `The token is read from stdin only (never from argv, which "ps" shows; "set-token <value>" exits 64
and warns the value is now in your shell history). Run alone on a terminal, it asks for the token and reads it
without echo; one Enter finishes. It is checked
with GET /v1/token before any file is touched, then replaces the old token in every config.
The old token is checked too: if it still works it is kept out of backups and named (revoke it
in the web UI). A token of another account needs --fingerprint, or a yes on a terminal.
  --fingerprint FP The token to replace (default: the only tracked token of the same account).`,
    options: { fingerprint: { type: 'string' } },
    load: () => import('./commands/set-token.js'),
  },
  {
    name: 'history',
    summary: 'Rotations, adoptions, heals and failed attempts, newest first.',
    usage: 'history [--limit N] [--fingerprint FP]',
    details: `JSON: { "events": [ { "at", "type", "fingerprint", "newFingerprint", "source", "files": [...] } ] }
  --limit N        At most N events (default 100).
  --fingerprint FP Only events about this token.`,
    options: { limit: { type: 'string' }, fingerprint: { type: 'string' } },
    load: () => import('./commands/history.js'),
  },
  {
    name: 'daemon',
    summary: 'Run the service in the foreground: schedule, watch configs, control socket. SIGTERM stops it.',
    usage: 'daemon',
    details: `Logs are pino JSON lines on stdout. While it runs, rotate, revoke-now and set-token go through its
control socket, so only one process writes. It checks every token with the API at start, after a wake
and at least daily. SIGTERM/SIGINT stop it (exit 0); SIGHUP reloads the settings, rescans and re-checks.`,
    options: {},
    load: () => import('./commands/daemon.js'),
  },
  {
    name: 'install-service',
    summary: 'Install and start the systemd user unit (Linux) or launchd agent (macOS).',
    usage: 'install-service [--dry-run]',
    details: `  --dry-run        Print the unit and the commands; write and run nothing.`,
    options: { 'dry-run': { type: 'boolean' } },
    load: () => import('./commands/service.js').then((m) => ({ run: m.runInstall })),
  },
  {
    name: 'uninstall-service',
    summary: 'Stop and remove the service installed by install-service.',
    usage: 'uninstall-service [--disable-broker] [--dry-run]',
    details: `Refuses (exit 2) while broker mode has converted entries: without the daemon and, later,
the tool itself, those clients could not connect. Run "broker disable" first, or:
  --disable-broker Run "broker disable" first (tokens back in the configs), then uninstall.
  --dry-run        Print the commands; run nothing.`,
    options: { 'dry-run': { type: 'boolean' }, 'disable-broker': { type: 'boolean' } },
    load: () => import('./commands/service.js').then((m) => ({ run: m.runUninstall })),
  },
  {
    name: 'broker',
    summary: 'Broker mode: move tokens out of the configs into the keychain; rotations then need no client restart.',
    usage: 'broker enable [--rotate] | disable | status [--dry-run]',
    details: `  enable           Convert every entry it can: stdio servers run through "exec", Claude Code
                   remote entries get a headersHelper, other remote entries point at the
                   daemon's local endpoint (only while the daemon runs or the service is
                   installed). The token goes to the keychain (or a 0600 file). Entries that
                   cannot be converted (shell files, .env, ...) stay plaintext and say why.
  disable          Put every converted entry back as it was, with the current token.
  status           Each entry's mode (broker-exec, broker-headers, broker-endpoint,
                   plaintext and why), the token store, and whether the endpoint is up.
  --rotate         enable: then rotate every token whose entries were converted, so the
                   copies that sat in plaintext files (backups, git history, anyone who
                   could read them) stop working; running clients do not notice.
  --dry-run        enable/disable: plan and print; write nothing.
Exit 0 on success; 2 when a config could not be converted or restored (the others were),
a rotation failed, or (status) when entries use a local endpoint that is down.`,
    options: { 'dry-run': { type: 'boolean' }, rotate: { type: 'boolean' } },
    positionals: true,
    words: ['enable', 'disable', 'status'],
    load: () => import('./commands/broker.js'),
  },
  EXEC_SPEC,
  {
    name: 'doctor',
    summary: 'Report what is unsafe: readable configs, configs in git, admin tokens, API reachability.',
    usage: 'doctor [--offline]',
    details: `  --offline        Skip the API reachability check.
Exit 0 when nothing is unsafe, 2 otherwise.`,
    options: { offline: { type: 'boolean' } },
    load: () => import('./commands/doctor.js'),
  },
  HEADERS_SPEC,
  {
    name: 'completion',
    summary: 'Print a shell completion script (bash, zsh or fish): commands, options and tracked fingerprints.',
    usage: 'completion bash|zsh|fish',
    details: `bash:  source <(mcp-token-rotator completion bash)     (or save it in ~/.local/share/bash-completion/completions/mcp-token-rotator)
zsh:   source <(mcp-token-rotator completion zsh)      (or save it as _mcp-token-rotator in a directory of $fpath)
fish:  mcp-token-rotator completion fish | source     (or save it in ~/.config/fish/completions/mcp-token-rotator.fish)
Fingerprints for --fingerprint come from "status --json" (offline) when you press Tab.`,
    options: {},
    positionals: true,
    words: ['bash', 'zsh', 'fish'],
    load: () => import('./commands/completion.js'),
  },
];

export function globalHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return `mcp-token-rotator: keeps the API tokens in your MCP clients' configs (Certorix, GitHub, GitLab, Cloudflare) alive and safe.

Usage: mcp-token-rotator <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`).join('\n')}

${COMMON}
Exit codes: 0 success; 2 failure (the message names the file or token and the fix); 64 bad usage.
"status" alone: 0 all fine, 1 a token is due, 2 a token invalid, a rotation unfinished, a config that no longer parses or a broker problem.
Tokens are shown only by fingerprint (first 12 hex of SHA-256), never by value.
Run "mcp-token-rotator help <command>" (or "<command> --help") for a command's options; "mcp-token-rotator --version" prints the version.
Docs: README.md and docs/ in the package (troubleshooting and recovery: docs/troubleshooting.md).
`;
}
