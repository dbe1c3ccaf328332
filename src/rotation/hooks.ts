import { spawn } from 'node:child_process';
import { childEnv } from '../process/child-env.js';

export interface HookContext {
  oldFingerprint: string;
  newFingerprint: string;
  files: string[];
  source: string;
}

export interface HookResult {
  command: string;
  ok: boolean;
  exitCode: number | null;
  error?: string;
}

/** Variables that may hold a token are never passed on to a hook (see childEnv). */
export function hookEnv(base: NodeJS.ProcessEnv, h: HookContext): NodeJS.ProcessEnv {
  return childEnv(base, {
    MCP_TOKEN_ROTATOR_OLD_FINGERPRINT: h.oldFingerprint,
    MCP_TOKEN_ROTATOR_NEW_FINGERPRINT: h.newFingerprint,
    MCP_TOKEN_ROTATOR_FILES: h.files.join('\n'),
    MCP_TOKEN_ROTATOR_SOURCE: h.source,
  });
}

/** How long a timed-out hook's process group gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 500;

/** Signals a hook's whole process group (POSIX), or the shell alone where groups do not exist. */
function killGroup(pid: number | undefined, signal: NodeJS.Signals, fallback: () => void): void {
  if (pid === undefined) return;
  if (process.platform === 'win32') return fallback();
  try {
    process.kill(-pid, signal);
  } catch {
    /* the group is gone already */
  }
}

/**
 * Post-rotation hooks, certbot deploy-hook style: each command runs through the shell
 * after a rotation finished. A failing or timed-out hook is reported, never fatal: the
 * rotation is done.
 *
 * Each hook runs in its own process group (detached), so the timeout kills everything it
 * started (`sleep 30`, a pipeline, grandchildren), and the hook is over when its shell
 * exits: a background child it leaves (`restart-client &`) keeps running but is not waited
 * for, even though it inherited the stderr pipe.
 */
export async function runHooks(commands: string[], h: HookContext, timeoutMs: number): Promise<HookResult[]> {
  const results: HookResult[] = [];
  for (const command of commands) {
    results.push(
      await new Promise<HookResult>((resolve) => {
        let settled = false;
        const child = spawn(command, { shell: true, detached: true, env: hookEnv(process.env, h), stdio: ['ignore', 'ignore', 'pipe'], windowsHide: true });
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => {
          if (stderr.length < 2000) stderr += d.toString('utf8');
        });
        child.stderr?.on('error', () => undefined);
        const finish = (r: HookResult) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          // A background child may still hold the pipe; we are done reading it.
          child.stderr?.destroy();
          resolve(r);
        };
        const timer = setTimeout(() => {
          killGroup(child.pid, 'SIGTERM', () => child.kill('SIGTERM'));
          setTimeout(() => killGroup(child.pid, 'SIGKILL', () => child.kill('SIGKILL')), KILL_GRACE_MS);
          finish({ command, ok: false, exitCode: null, error: `timed out after ${timeoutMs} ms (hooks.timeoutMs); its process group was killed` });
        }, timeoutMs);
        child.on('error', (e) => finish({ command, ok: false, exitCode: null, error: e.message }));
        const verdict = (code: number | null, signal: NodeJS.Signals | null): HookResult =>
          code === 0 ? { command, ok: true, exitCode: 0 } : { command, ok: false, exitCode: code, error: signal ? `killed by ${signal}` : stderr.trim().slice(-500) || `exit ${code}` };
        // 'close' comes once stderr is drained, which a background child holding the pipe
        // delays; so the shell's exit, plus a moment for what it wrote last, ends the hook.
        child.on('close', (code, signal) => finish(verdict(code, signal)));
        child.on('exit', (code, signal) => {
          setTimeout(() => finish(verdict(code, signal)), 100);
        });
      }),
    );
  }
  return results;
}
