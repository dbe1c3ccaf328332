/**
 * Where the control channel listens. On Unix, a socket file in the 0700 state directory:
 * only the user can reach it. Windows named pipes live in one machine-wide namespace, so a
 * name computed from the state directory could be created first by another user, who would
 * then receive set-token's token. There the daemon picks a random name at each start and
 * records it in a 0600 file in the state directory (the user's profile); a client reads it
 * from there. Whoever cannot read that file cannot guess the name.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

const PIPE_PREFIX = '\\\\.\\pipe\\mcp-token-rotator-';
const PIPE_NAME = /^\\\\\.\\pipe\\mcp-token-rotator-[0-9a-f]{32}$/;

/** 128 random bits: unguessable, fresh at each daemon start. */
export function newPipeName(): string {
  return PIPE_PREFIX + randomBytes(16).toString('hex');
}

export function isPipeName(s: string): boolean {
  return PIPE_NAME.test(s);
}

/**
 * The address the server listens on. `socketPath` is the state directory's `control.sock`
 * on Unix, and on Windows the record file (`control.pipe`) that receives a new pipe name.
 */
export async function serverEndpoint(socketPath: string, platform: NodeJS.Platform = process.platform): Promise<string> {
  if (platform !== 'win32') return socketPath;
  const { rename, unlink, writeFile } = fs.promises;
  const name = newPipeName();
  const tmp = `${socketPath}.${process.pid}.tmp`;
  await writeFile(tmp, name, { mode: 0o600 });
  await rename(tmp, socketPath).catch(async (e: unknown) => {
    await unlink(tmp).catch(() => undefined);
    throw e;
  });
  return name;
}

/** The address a client connects to; null when no daemon has recorded one (or the record is not ours). */
export async function clientEndpoint(socketPath: string, platform: NodeJS.Platform = process.platform): Promise<string | null> {
  if (platform !== 'win32') return socketPath;
  // fs.promises is loaded here, on Windows only: the exec wrapper calls this at every rotation.
  const name = await fs.promises.readFile(socketPath, 'utf8').catch(() => null);
  return name !== null && isPipeName(name.trim()) ? name.trim() : null;
}
