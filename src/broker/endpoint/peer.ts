/**
 * Linux: who is on the other end of an accepted loopback connection. The kernel lists every
 * TCP socket with its owner's uid in /proc/net/tcp and tcp6; the client's socket is the one
 * whose local port is our connection's remote port. Looked up once per connection (keep-alive
 * requests reuse it), and batched: while one read of the tables runs, the connections accepted
 * meanwhile wait for the next read, so a flood of connections costs one read per batch, not
 * one per connection. Elsewhere (macOS, Windows) there is no such table: `lookup` is undefined.
 */
import { readFile } from 'node:fs/promises';
import { peerUidsFromProcNet } from './policy.js';

export type PeerLookup = (remotePort: number) => Promise<number | null>;

export function peerUidLookup(serverPort: () => number, opts: { platform?: NodeJS.Platform; files?: string[] } = {}): PeerLookup | undefined {
  if ((opts.platform ?? process.platform) !== 'linux') return undefined;
  const files = opts.files ?? ['/proc/net/tcp', '/proc/net/tcp6'];
  let waiting: Array<{ port: number; resolve: (uid: number | null) => void; tries: number }> = [];
  let reading = false;

  const read = async (): Promise<void> => {
    reading = true;
    try {
      while (waiting.length) {
        const batch = waiting;
        waiting = [];
        const found = new Map<number, number>();
        for (const f of files) {
          // tcp6 only when tcp did not name them all (an IPv4-mapped client socket is rare).
          if (batch.every((w) => found.has(w.port))) break;
          const text = await readFile(f, 'latin1').catch(() => '');
          for (const [p, uid] of peerUidsFromProcNet(text, serverPort())) found.set(p, uid);
        }
        for (const w of batch) {
          const uid = found.get(w.port);
          if (uid !== undefined) w.resolve(uid);
          // Accepted after the read began: it shows up in the next one. Then it is unknown.
          else if (w.tries < 1) waiting.push({ ...w, tries: w.tries + 1 });
          else w.resolve(null);
        }
      }
    } finally {
      reading = false;
    }
  };

  return (remotePort) =>
    new Promise((resolve) => {
      waiting.push({ port: remotePort, resolve, tries: 0 });
      if (!reading) void read();
    });
}
