import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { childEnv } from '../process/child-env.js';

/**
 * Desktop notifications, best effort: notify-send on Linux, osascript on macOS. Never fatal,
 * never given a token (only fingerprints and advice). MCP_TOKEN_ROTATOR_NOTIFY_FILE sends
 * them to a file instead, for tests and headless machines.
 */
export async function notify(title: string, body: string): Promise<void> {
  const file = process.env.MCP_TOKEN_ROTATOR_NOTIFY_FILE;
  if (file) {
    await appendFile(file, JSON.stringify({ title, body }) + '\n').catch(() => undefined);
    return;
  }
  const run = (cmd: string, args: string[]) =>
    new Promise<void>((resolve) => {
      execFile(cmd, args, { timeout: 5000, env: childEnv(process.env), windowsHide: true }, () => resolve());
    });
  if (process.platform === 'darwin') {
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    await run('osascript', ['-e', `display notification "${esc(body)}" with title "${esc(title)}"`]);
  } else if (process.platform === 'linux') {
    await run('notify-send', ['--app-name=mcp-token-rotator', title, body]);
  }
}

/**
 * The daemon's one way to notify: asks `enabled()` at each call (the settings' `notify`,
 * which SIGHUP may change), so `notify: false` silences every notification.
 */
export function createNotifier(enabled: () => boolean, send: typeof notify = notify): (title: string, body: string) => void {
  return (title, body) => {
    if (enabled()) void send(title, body);
  };
}
