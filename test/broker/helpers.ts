import { expect } from 'vitest';
import type { FakeCertorix } from '../fake/certorix.js';
import { makeHome, runCli, type TempHome } from '../helpers/home.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { installBin } from '../helpers/broker.js';

/** The 13 clients: the shared fixtures plus Roo (same form as Cline, its own path and lock). */
const ROO = {
  client: 'roo',
  rel: '.config/Code/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json',
  content: (t: string) => `{\n  "mcpServers": {\n    "certorix": {\n      "command": "npx",\n      "args": [\n        "-y",\n        "@certorix/mcp-server"\n      ],\n      "env": {\n        "CERTORIX_API_TOKEN": "${t}"\n      },\n      "alwaysAllow": []\n    }\n  }\n}\n`,
};
export const ALL = [...FIXTURES, ROO];
export const REMOTE = new Set(['windsurf', 'gemini']); // endpoint entries: need the daemon or the service
export const UNIT = '.config/systemd/user/mcp-token-rotator.service';

/**
 * A stand-in systemctl first on the CLI's PATH (there is no user manager here): it logs its
 * arguments to ~/systemctl.log and answers `is-active` from ~/systemctl-state ("active",
 * else exit 3 like a stopped or failed unit).
 */
export async function fakeSystemctl(h: TempHome, state: 'active' | 'inactive' | 'failed'): Promise<void> {
  await h.write('systemctl-state', state + '\n');
  const script = [
    '#!/bin/sh',
    'echo "$*" >> "$HOME/systemctl.log"',
    'if [ "$2" = is-active ]; then',
    '  s=$(cat "$HOME/systemctl-state")',
    '  echo "$s"',
    '  [ "$s" = active ] && exit 0 || exit 3',
    'fi',
    'exit 0',
  ].join('\n');
  await h.write('fakebin/systemctl', script + '\n', 0o755);
  const bin = h.path('fakebin');
  if (!h.env.PATH?.startsWith(bin)) h.env.PATH = `${bin}:${h.env.PATH ?? '/usr/bin:/bin'}`;
}

export interface StatusDoc {
  store: { backend: string; where: string };
  endpoint: { port: number | null; daemon: boolean; service: boolean; up: boolean | null; entries: number };
  entries: Array<{ path: string; client: string; server: string; mode: string; fingerprint: string; slot?: string; state?: string; reason?: string }>;
}

export async function snapshot(h: TempHome): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of ALL) m.set(f.rel, await h.read(f.rel));
  return m;
}

export async function setup(api: FakeCertorix): Promise<{ h: TempHome; tok: string; email: string }> {
  const h = await makeHome(api.url);
  // Installed, as a user has it: Claude Code's projects.* entry gets the portable form (the bare command on PATH).
  await installBin(h);
  const email = `u${Math.random().toString(36).slice(2)}@example.com`;
  const tok = api.addToken({ email, role: 'editor', ageDays: 10 });
  for (const f of ALL) await h.write(f.rel, f.content(tok));
  const scan = await runCli(['scan'], { env: h.env });
  expect(scan.code, scan.stderr).toBe(0);
  return { h, tok, email };
}

