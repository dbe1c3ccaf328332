/**
 * Issue 9 §8: the Windows control pipe is unguessable per user. The daemon records a random
 * name in a 0600 file in the state directory at each start; a client reads it from there.
 * Unix keeps its socket file. (The Windows branch is exercised here through the platform
 * parameter; no pipe is opened.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clientEndpoint, isPipeName, serverEndpoint } from '../../src/ipc/endpoint.js';
import { statePaths } from '../../src/paths.js';

describe('control endpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mtr-pipe-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('Unix: the socket file in the state directory, as before', async () => {
    const sock = path.join(dir, 'control.sock');
    expect(await serverEndpoint(sock, 'linux')).toBe(sock);
    expect(await clientEndpoint(sock, 'darwin')).toBe(sock);
    if (process.platform !== 'win32') expect(statePaths(dir).socket).toBe(sock);
  });

  it('Windows: a fresh random pipe name per start, recorded 0600, read back by the client', async () => {
    const record = path.join(dir, 'control.pipe');
    expect(await clientEndpoint(record, 'win32')).toBeNull(); // no daemon has started
    const first = await serverEndpoint(record, 'win32');
    expect(isPipeName(first)).toBe(true);
    expect(first).toMatch(/^\\\\\.\\pipe\\mcp-token-rotator-[0-9a-f]{32}$/);
    expect(await readFile(record, 'utf8')).toBe(first);
    if (process.platform !== 'win32') expect((await stat(record)).mode & 0o777).toBe(0o600);
    expect(await clientEndpoint(record, 'win32')).toBe(first);
    const second = await serverEndpoint(record, 'win32');
    expect(second).not.toBe(first);
    expect(await clientEndpoint(record, 'win32')).toBe(second);
  });

  it('Windows: a record that is not one of our pipe names is ignored (no daemon)', async () => {
    const record = path.join(dir, 'other.pipe');
    for (const junk of ['\\\\.\\pipe\\someone-else', '\\\\server\\pipe\\mcp-token-rotator-' + '0'.repeat(32), '']) {
      await writeFile(record, junk);
      expect(await clientEndpoint(record, 'win32')).toBeNull();
    }
  });
});
