// A reference for the endpoint row: the smallest node:http proxy that does the endpoint's job
// (buffer the request body, add the bearer, forward on a keep-alive agent, pipe the answer
// back), in a process of its own like the daemon. `node bench/lib/proxy-child.mjs <mcpUrl>
// <token>` prints one JSON line {port} and serves until stdin closes. No route secret, no
// access checks, no hold: what node:http alone costs per call on this machine.
import http from 'node:http';

const [, , upstreamUrl, token] = process.argv;
const u = new URL(upstreamUrl);
const agent = new http.Agent({ keepAlive: true, noDelay: true });
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const headers = { ...req.headers, host: u.host, authorization: `Bearer ${token}` };
    const body = chunks.length > 0 ? Buffer.concat(chunks) : null;
    if (body) headers['content-length'] = body.length;
    const up = http.request({ agent, hostname: u.hostname, port: u.port, path: u.pathname, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    up.end(body ?? undefined);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n'));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
