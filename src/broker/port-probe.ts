/**
 * Whether something accepts a TCP connection on 127.0.0.1:port within `timeoutMs`: the
 * loopback liveness check shared by `broker enable` (no URL before the port answers) and
 * `status` (an endpoint entry while the endpoint is down). Built-ins only, so `status`
 * stays light.
 */
import { connect } from 'node:net';

export function portAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
