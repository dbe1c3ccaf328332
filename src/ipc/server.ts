import { createServer, type Server, type Socket } from 'node:net';
import { chmod, unlink } from 'node:fs/promises';
import { encode, LineDecoder, parseRequest, ProtocolError, type Request, type Response, type WireError } from './protocol.js';
import { RotatorError } from '../errors.js';
import { serverEndpoint } from './endpoint.js';

export type Handler = (req: Request) => Promise<unknown>;

export interface ControlServer {
  close(): Promise<void>;
}

function wireError(e: unknown): WireError {
  if (e instanceof RotatorError) return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.file ? { file: e.file } : {}) };
  return { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** Listens on the control socket; a stale socket file from a dead daemon is replaced. */
export async function startControlServer(socketPath: string, handle: Handler): Promise<ControlServer> {
  await unlink(socketPath).catch(() => undefined);
  // Unix: the socket file itself; Windows: a fresh random pipe name, recorded in socketPath.
  const endpoint = await serverEndpoint(socketPath);
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.setEncoding('utf8');
    const dec = new LineDecoder();
    sock.on('data', (chunk: string) => {
      let lines: string[];
      try {
        lines = dec.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const line of lines) {
        let req: Request;
        try {
          req = parseRequest(line);
        } catch (e) {
          // The request's own id when it had one, so the caller gets this answer instead of waiting.
          const id = e instanceof ProtocolError ? e.id : -1;
          sock.write(encode({ id, ok: false, error: { code: 'E_USAGE', message: (e as Error).message, hint: 'Send what the CLI sends (see src/ipc/protocol.ts).' } }));
          continue;
        }
        handle(req).then(
          (result) => {
            if (!sock.destroyed) sock.write(encode({ id: req.id, ok: true, result } as Response));
          },
          (e: unknown) => {
            if (!sock.destroyed) sock.write(encode({ id: req.id, ok: false, error: wireError(e) }));
          },
        );
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The 0700 state directory already keeps others out; 0600 on the socket too.
    server.listen(endpoint, () => resolve());
  });
  if (process.platform !== 'win32') await chmod(socketPath, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          void unlink(socketPath).catch(() => undefined);
          resolve();
        });
      }),
  };
}
