import { spawn } from 'node:child_process';

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

/** Variables that may hold a token are never passed on to a hook. */
export function hookEnv(base: NodeJS.ProcessEnv, h: HookContext): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (/TOKEN|SECRET|PASSWORD|API_KEY|AUTH/i.test(k)) continue;
    env[k] = v;
  }
  env.MCP_TOKEN_ROTATOR_OLD_FINGERPRINT = h.oldFingerprint;
  env.MCP_TOKEN_ROTATOR_NEW_FINGERPRINT = h.newFingerprint;
  env.MCP_TOKEN_ROTATOR_FILES = h.files.join('\n');
  env.MCP_TOKEN_ROTATOR_SOURCE = h.source;
  return env;
}

/**
 * Post-rotation hooks, certbot deploy-hook style: each command runs through the shell
 * after a rotation finished. A failing hook is reported, never fatal: the rotation is done.
 */
export async function runHooks(commands: string[], h: HookContext, timeoutMs: number): Promise<HookResult[]> {
  const results: HookResult[] = [];
  for (const command of commands) {
    results.push(
      await new Promise<HookResult>((resolve) => {
        const child = spawn(command, { shell: true, env: hookEnv(process.env, h), stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => {
          if (stderr.length < 2000) stderr += d.toString('utf8');
        });
        const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
        child.on('error', (e) => {
          clearTimeout(timer);
          resolve({ command, ok: false, exitCode: null, error: e.message });
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve(
            code === 0
              ? { command, ok: true, exitCode: 0 }
              : { command, ok: false, exitCode: code, error: signal ? `killed by ${signal} (timeout ${timeoutMs} ms?)` : stderr.trim().slice(-500) || `exit ${code}` },
          );
        });
      }),
    );
  }
  return results;
}
