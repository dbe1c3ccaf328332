/**
 * Who holds a port on 127.0.0.1: Linux names the listening socket's owner in /proc/net/tcp
 * (and tcp6). `broker status`, `doctor` and the daemon's port move use it to tell the user
 * which uid holds a port that should be the daemon's. Elsewhere: unknown (null).
 */
import { readFile } from 'node:fs/promises';
import { listenerUidFromProcNet } from './policy.js';

export async function listenerUid(port: number, platform: NodeJS.Platform = process.platform): Promise<number | null> {
  if (platform !== 'linux') return null;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(f, 'latin1').catch(() => '');
    const uid = listenerUidFromProcNet(text, port);
    if (uid !== null) return uid;
  }
  return null;
}
