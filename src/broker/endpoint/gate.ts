import type { Socket } from 'node:net';
import type { Logger } from '../../log.js';
import { admitConnection, CONNECTION_LIMITS, type ConnectionLimits } from './policy.js';
import { peerUidLookup, type PeerLookup } from './peer.js';

export interface GateOptions {
  peerLookup?: PeerLookup | null;
  ownUid?: number;
  limits?: ConnectionLimits;
}

/**
 * Accept time: who may hold a connection (how long it may take to send a request is the
 * server's: exchange.ts). On Linux the peer's uid is looked up once per connection and anyone but the daemon's own uid
 * is closed at once; connections are capped (all peers, and per uid) and refused ones are
 * closed at once, so a flood of idle connections holds a bounded number of file descriptors
 * and the rotation path (SQLite, config writes, the control socket) always gets its own.
 */
export function connectionGate(opts: GateOptions, port: () => number, log: Logger) {
  const limits = opts.limits ?? CONNECTION_LIMITS;
  const ownUid = opts.ownUid ?? process.getuid?.() ?? -1;
  const lookup = opts.peerLookup === null ? undefined : (opts.peerLookup ?? peerUidLookup(port));
  const verdict = new WeakMap<Socket, boolean | Promise<boolean>>();
  const perPeer = new Map<string, number>();
  let total = 0;
  let pending = 0;
  let refused = 0;
  let lastReport = 0;
  const report = (reason: string, peerUid: number | null | undefined): void => {
    refused++;
    // One line per minute at most: a flood must not fill the log either.
    const now = Date.now();
    if (now - lastReport < 60_000) return;
    lastReport = now;
    log.warn({ reason, peerUid, refused, served: total, limits }, 'broker endpoint refused connections');
    refused = 0;
  };

  const decide = (s: Socket, peerUid: number | null | undefined): boolean => {
    if (s.destroyed) return false;
    const key = peerUid === undefined ? '*' : String(peerUid);
    const d = admitConnection({ peerUid, ownUid, total, perPeer: perPeer.get(key) ?? 0, limits });
    if (!d.ok) {
      report(d.reason, peerUid);
      s.destroy();
      return false;
    }
    total++;
    perPeer.set(key, (perPeer.get(key) ?? 0) + 1);
    s.once('close', () => {
      total--;
      const n = (perPeer.get(key) ?? 1) - 1;
      if (n > 0) perPeer.set(key, n);
      else perPeer.delete(key);
    });
    return true;
  };

  return {
    accept(s: Socket): void {
      // Deadlines (a connection that sends no request, a slow head) are the server's (exchange.ts).
      if (!lookup) {
        verdict.set(s, decide(s, undefined));
        return;
      }
      if (pending >= limits.pending) {
        report('too-many-pending', undefined);
        verdict.set(s, false);
        s.destroy();
        return;
      }
      pending++;
      const p = lookup(s.remotePort ?? 0).then(
        (uid) => decide(s, uid),
        () => decide(s, null),
      );
      verdict.set(s, p);
      void p.then((ok) => {
        pending--;
        verdict.set(s, ok);
      });
    },
    admitted(s: Socket): boolean | Promise<boolean> {
      return verdict.get(s) ?? false;
    },
  };
}
