/**
 * `npm run sandbox`: a place to try every command by hand without a Certorix account and
 * without touching your real configs. It starts the fake Certorix API (with its `/_fake/`
 * control surface), makes a throw-away HOME holding a few realistic client configs with two
 * seeded tokens, prints the lines that point a shell at both, and serves until Ctrl-C, when
 * the HOME is removed.
 *
 *   PORT=8123 npm run sandbox     a fixed port (default: any free one)
 *   node dist/test/fake/sandbox.js --json   one JSON line { home, apiUrl, cli, exports, fingerprints, files } (tests)
 *
 * The tokens are fake (the fake API mints them); they are never printed, only their
 * fingerprints, as the CLI does.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATALOG } from '../../src/clients/catalog.js';
import { fingerprint } from '../../src/fingerprint.js';
import { currentPathEnv, settingsPath, type PathEnv } from '../../src/paths.js';
import { startFakeCertorix } from './certorix.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** Single-quoted for sh/bash/zsh: nothing inside is expanded. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A word for inside the alias' single quotes: bare when safe, else double-quoted. */
const plain = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/["\\$`]/g, '\\$&')}"`);

/** The sandbox's client configs: what a real laptop has, one token in three clients, one in Codex. */
export function sandboxConfigs(main: string, other: string): Array<{ client: string; text: string }> {
  const npxServer = { command: 'npx', args: ['-y', '@certorix/mcp-server'] };
  return [
    {
      client: 'claude-desktop',
      text: `${JSON.stringify({ mcpServers: { certorix: { ...npxServer, env: { CERTORIX_API_TOKEN: main } } }, globalShortcut: 'Ctrl+Space' }, null, 2)}\n`,
    },
    {
      client: 'cursor',
      text: `${JSON.stringify({ mcpServers: { certorix: { ...npxServer, env: { CERTORIX_API_TOKEN: main } } } }, null, 2)}\n`,
    },
    {
      client: 'vscode',
      text: `{
  // VS Code keeps comments and trailing commas; the rewrite keeps them too.
  "servers": {
    "certorix": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${main}" },
    },
  },
}
`,
    },
    {
      client: 'codex',
      text: `# Codex CLI\nmodel = "o4-mini"\n\n[mcp_servers.certorix]\ncommand = "npx"\nargs = ["-y", "@certorix/mcp-server"]\nenv = { CERTORIX_API_TOKEN = "${other}" } # the team account\n`,
    },
  ];
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const port = Number(process.env.PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${process.env.PORT}"`);
  const api = await startFakeCertorix({ port, control: true });
  const home = realpathSync(mkdtempSync(path.join(tmpdir(), 'mtr-sandbox-')));
  const main = api.addToken({ email: 'you@example.com', role: 'editor', ageDays: 95 });
  const other = api.addToken({ email: 'team@example.com', role: 'viewer', ageDays: 12 });
  // Where each client keeps its config on this OS, as the CLI will see it (HOME set, the
  // variables the printed lines unset left out).
  const pe: PathEnv = { ...currentPathEnv(), home, env: { HOME: home } };
  const written: string[] = [];
  for (const { client, text } of sandboxConfigs(main, other)) {
    const file = CATALOG.find((c) => c.id === client)?.paths(pe)[0];
    if (!file) throw new Error(`no catalog path for ${client}`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text, { mode: 0o600 });
    written.push(file);
  }
  // Broker mode's token store as a file in the sandbox: `broker enable` must not put fake
  // tokens into your real keychain (the session bus is not behind HOME).
  mkdirSync(path.dirname(settingsPath(pe)), { recursive: true, mode: 0o700 });
  writeFileSync(settingsPath(pe), `${JSON.stringify({ broker: { store: 'file' } }, null, 2)}\n`, { mode: 0o600 });

  // Variables that would send the CLI to your real configs or state despite the new HOME.
  const leaks = ['XDG_CONFIG_HOME', 'XDG_STATE_HOME', 'CODEX_HOME', 'CLAUDE_CONFIG_DIR'];
  const exports = [
    `export HOME=${sq(home)} CERTORIX_API_URL=${sq(api.url)}; unset ${leaks.join(' ')}`,
    `alias mcp-token-rotator=${sq(`${plain(process.execPath)} ${plain(cli)}`)}`,
  ];
  const fingerprints = [fingerprint(main), fingerprint(other)];

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    rmSync(home, { recursive: true, force: true });
    api.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', stop);

  if (json) {
    process.stdout.write(`${JSON.stringify({ home, apiUrl: api.url, cli, exports, fingerprints, files: written })}\n`);
    return;
  }
  const out = [
    `Sandbox ready: a fake Certorix API at ${api.url} and a throw-away HOME at ${home}.`,
    `It holds token ${fingerprints[0]} (you@example.com, editor, 95 days old: due) in Claude Desktop, Cursor and VS Code,`,
    `and token ${fingerprints[1]} (team@example.com, viewer, 12 days) in Codex CLI.`,
    '',
    'In ANOTHER terminal (bash or zsh), paste these two lines; they change HOME in that terminal only, so close it when done:',
    '',
    ...exports.map((l) => `  ${l}`),
    '',
    'Then try any command:',
    '  mcp-token-rotator scan && mcp-token-rotator status',
    '  mcp-token-rotator doctor',
    '  mcp-token-rotator rotate --dry-run',
    `  mcp-token-rotator rotate --fingerprint ${fingerprints[0]}`,
    '  mcp-token-rotator history',
    `  cat ${sq(written[2] ?? '')}   # VS Code's config: the comment and trailing commas are still there`,
    '  mcp-token-rotator revoke-now',
    '  mcp-token-rotator daemon                  # Ctrl-C stops it',
    '  mcp-token-rotator broker enable --dry-run',
    'A token "regenerated in the web UI", adopted with set-token:',
    `  curl -s -X POST "$CERTORIX_API_URL/_fake/tokens" -d '{"email":"team@example.com","role":"viewer"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/' | mcp-token-rotator set-token --fingerprint ${fingerprints[1]}`,
    'An API outage (the next 3 regenerate calls answer 503; rotate retries them):',
    `  curl -s -X POST "$CERTORIX_API_URL/_fake/fault" -d '{"match":{"path":"/v1/token/regenerate"},"fault":{"kind":"status","status":503},"times":3}'`,
    'What the fake API saw:  curl -s "$CERTORIX_API_URL/_fake/state"',
    '',
    'Not here: install-service (it would install a real service for your user).',
    'Ctrl-C here stops the fake API and deletes the sandbox HOME.',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`sandbox: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
