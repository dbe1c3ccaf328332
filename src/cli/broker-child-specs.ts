// The specs of the two commands a client runs (not a person): `exec` (every converted stdio
// server start) and `headers` (Claude Code's headersHelper, at every connection). Apart from
// commands.ts so their own small bundles (src/cli/entry-exec.ts, entry-headers.ts) hold only these.
import type { CommandSpec } from './spec.js';

export const EXEC_SPEC: CommandSpec = {
    name: 'exec',
    summary: 'Broker mode: run a local MCP server with the current token, carrying the session across rotations.',
    usage: 'exec <slot> [--state-dir DIR] [--env NAME] -- <command> [args...]',
    details: `Written into converted client entries by "broker enable"; not meant to be typed. Starts
<command> with the slot's token in the entry's variable (--env, default CERTORIX_API_TOKEN)
(from the daemon, or the token store when
none runs) and relays the MCP messages on stdin/stdout. On a rotation it holds new calls, starts
the server again with the new token, replays the session's handshake and sends the held calls
there; the client is never restarted. Its own messages go to stderr only.
  --state-dir DIR  The state directory the entry was converted with (default: the per-OS one).
  --env NAME       The variable the server reads its token from (e.g. GITHUB_PERSONAL_ACCESS_TOKEN).`,
    options: { 'state-dir': { type: 'string' }, env: { type: 'string' } },
    positionals: true,
    passthrough: true,
    load: () => import('./commands/exec.js'),
  };

export const HEADERS_SPEC: CommandSpec = {
    name: 'headers',
    summary: "Broker mode: Claude Code's headersHelper; prints {\"Authorization\":\"Bearer ...\"} for a broker slot.",
    usage: 'headers <slot> [--state-dir DIR]',
    details: `Written into Claude Code remote entries by "broker enable" as "headersHelper". Prints exactly one
JSON object on stdout, {"Authorization":"Bearer <token>"}, and any message on stderr. The
token comes from the daemon when it runs, else from the broker's token store. During a
rotation it waits (a few seconds at most) for the new token before printing.
  --state-dir DIR  The state directory holding the broker store (default: the per-OS path).
Exit 0, or 2 with the reason on stderr.`,
    options: { 'state-dir': { type: 'string' } },
    positionals: true,
    load: () => import('./commands/headers.js'),
  };
