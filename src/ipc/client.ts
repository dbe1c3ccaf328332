import { connect } from 'node:net';
import { RotatorError } from '../errors.js';
import { encode, LineDecoder, type Request, type Response } from './protocol.js';
import { clientEndpoint } from './endpoint.js';

type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * Sends one request to the running daemon. Resolves null when no daemon listens (no socket,
 * or a stale one), so the caller can do the work itself under the same lock.
 */
export async function callDaemon(socketPath: string, req: Outgoing, opts: { timeoutMs?: number } = {}): Promise<Response | null> {
  // Windows: the pipe name the running daemon recorded; none recorded means no daemon.
  const endpoint = await clientEndpoint(socketPath);
  if (endpoint === null) return null;
  return new Promise((resolve, reject) => {
    const sock = connect(endpoint);
    const dec = new LineDecoder();
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      fn();
    };
    const timer = setTimeout(
      () => done(() => reject(new RotatorError('E_DAEMON_RUNNING', 'The daemon did not answer in time.', { hint: 'Check its logs (see docs/troubleshooting.md), or stop it and run the command again.' }))),
      opts.timeoutMs ?? 10 * 60_000,
    );
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(encode({ id: 1, ...req } as Request)));
    sock.on('data', (chunk: string) => {
      for (const line of dec.push(chunk)) {
        const res = JSON.parse(line) as Response;
        if (res.id === 1) done(() => resolve(res));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK') done(() => resolve(null));
      else done(() => reject(e));
    });
    sock.on('close', () => done(() => reject(new RotatorError('E_DAEMON_RUNNING', 'The daemon closed the connection before answering.', { hint: 'It may be shutting down; run the command again.' }))));
  });
}
