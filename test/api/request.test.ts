import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport, RequestTimeout, type Transport } from '../../src/api/request.js';
import { createHttpClient } from '../../src/providers/http.js';
import { createCertorixProvider } from '../../src/providers/certorix/api.js';
import { ApiError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { ROOT } from '../helpers/home.js';

// src/api/request.ts: the node:http exchange under every provider client, against real
// servers on 127.0.0.1 (the clients' classification is tested in certorix.test.ts and
// test/providers/).

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen<S extends Server | NetServer>(server: S): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A TCP server that accepts and never says a word: a TLS handshake to it never finishes. */
async function silentTcp(): Promise<{ host: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createNetServer((s) => sockets.push(s));
  const host = await listen(server);
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return { host, sockets };
}

function transport(o: Partial<Parameters<typeof createTransport>[0]> = {}): Transport {
  const t = createTransport({ timeoutMs: 2000, maxBodyBytes: 1024, closeGraceMs: 200, ...o });
  cleanups.push(() => t.close());
  return t;
}

const client = (apiUrl: string, timeoutMs = 2000) => {
  const c = createHttpClient({ label: 'Test', apiUrl, timeoutMs, urlHint: 'TEST_API_URL', tokenPage: 'https://example.com/tokens' });
  cleanups.push(() => c.close());
  return c;
};

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail');
}

describe('createTransport', () => {
  it('sends method, headers and body with its length; answers lower-case headers, repeats as arrays', async () => {
    let seen: { method?: string; headers?: Record<string, unknown>; body?: string } = {};
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen = { method: req.method, headers: req.headers, body };
        res.setHeader('X-Many', ['a', 'b']);
        res.setHeader('Retry-After', '3');
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    const host = await listen(server);
    const a = await transport().send({ url: new URL(`http://${host}/v1/x?y=1`), method: 'POST', headers: { authorization: 'Bearer t' }, body: '{"é":1}' });
    expect(seen).toMatchObject({ method: 'POST', body: '{"é":1}', headers: { authorization: 'Bearer t', 'content-length': String(Buffer.byteLength('{"é":1}')) } });
    expect(a).toMatchObject({ status: 201, text: '{"ok":true}', truncated: false });
    expect(a.headers['x-many']).toEqual(['a', 'b']);
    expect(a.headers['retry-after']).toBe('3');
    expect(a.headers['content-type']).toBe('application/json');
  });

  it('reuses one kept-alive connection across calls, and close() closes it', async () => {
    const conns: Socket[] = [];
    const server = createServer((_req, res) => res.end('{}'));
    server.on('connection', (s: Socket) => conns.push(s));
    const host = await listen(server);
    const t = transport();
    for (let i = 0; i < 3; i++) expect((await t.send({ url: new URL(`http://${host}/`), method: 'GET', headers: {} })).status).toBe(200);
    expect(conns).toHaveLength(1);
    const closed = new Promise((r) => conns[0]!.once('close', r));
    await t.close();
    await closed;
    expect(t.closed).toBe(true);
  });

  it('the idle-socket limit closes only idle sockets: a slower answer on a busy one still arrives', async () => {
    const conns: Socket[] = [];
    const server = createServer((_req, res) => setTimeout(() => res.end('{"slow":true}'), 400));
    server.on('connection', (s: Socket) => conns.push(s));
    const host = await listen(server);
    const t = transport({ idleSocketMs: 100 });
    const a = await t.send({ url: new URL(`http://${host}/`), method: 'GET', headers: {} });
    expect(a.text).toBe('{"slow":true}');
    // Then idle: the Agent closes it after ~100 ms, long before close().
    await new Promise((r) => conns[0]!.once('close', r));
    expect(t.closed).toBe(false);
  });

  it('a body over the cap is not read on: truncated', async () => {
    const server = createServer((_req, res) => res.end('x'.repeat(5000)));
    const host = await listen(server);
    const a = await transport({ maxBodyBytes: 100 }).send({ url: new URL(`http://${host}/`), method: 'GET', headers: {} });
    expect(a).toMatchObject({ status: 200, text: '', truncated: true });
  });

  it('no TLS handshake within connectTimeoutMs: a connect timeout (nothing sent), long before timeoutMs', async () => {
    const { host, sockets } = await silentTcp();
    const t0 = Date.now();
    const e = await rejection(transport({ timeoutMs: 10_000, connectTimeoutMs: 200 }).send({ url: new URL(`https://${host}/`), method: 'GET', headers: {} }));
    expect(e).toBeInstanceOf(RequestTimeout);
    expect(e).toMatchObject({ phase: 'connect', code: 'E_CONNECT_TIMEOUT', message: 'no connection within 200 ms' });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(sockets.length).toBe(1);
  });

  it('connected but no answer within timeoutMs: an answer timeout', async () => {
    const server = createServer(() => undefined);
    const host = await listen(server);
    cleanups.unshift(() => server.closeAllConnections());
    const e = await rejection(transport({ timeoutMs: 200 }).send({ url: new URL(`http://${host}/`), method: 'GET', headers: {} }));
    expect(e).toMatchObject({ phase: 'answer', code: 'E_TIMEOUT', message: 'no complete answer within 200 ms' });
  });

  it("the caller's abort ends the call with the caller's reason", async () => {
    const server = createServer(() => undefined);
    const host = await listen(server);
    cleanups.unshift(() => server.closeAllConnections());
    const ac = new AbortController();
    const reason = new Error('stop');
    setTimeout(() => ac.abort(reason), 50);
    expect(await rejection(transport().send({ url: new URL(`http://${host}/`), method: 'GET', headers: {}, signal: ac.signal }))).toBe(reason);
  });

  it('close() cuts off a hung call after the grace period', async () => {
    const server = createServer(() => undefined);
    const host = await listen(server);
    cleanups.unshift(() => server.closeAllConnections());
    const t = transport({ timeoutMs: 60_000, closeGraceMs: 100 });
    const pending = rejection(t.send({ url: new URL(`http://${host}/`), method: 'GET', headers: {} }));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await t.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
  });
});

describe('the clients on it: which failures were surely not sent', () => {
  it('a connection refused is transient and notSent', async () => {
    const server = createNetServer();
    const host = await listen(server);
    await new Promise((r) => server.close(r));
    const e = (await rejection(client(`http://${host}`).call(new Secret('tok_refused_0001'), { method: 'POST', path: '/x', doing: 'rotating' }))) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect([e.kind, e.notSent]).toEqual(['transient', true]);
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('a TLS handshake that never ends is a connect timeout: transient and notSent; Certorix keeps its words', async () => {
    const { host } = await silentTcp();
    const e = (await rejection(client(`https://${host}`, 300).call(new Secret('tok_hs_0001'), { method: 'POST', path: '/x', doing: 'rotating' }))) as ApiError;
    expect([e.kind, e.notSent]).toEqual(['transient', true]);
    expect(e.message).toContain('no connection within 300 ms');
    const cx = createCertorixProvider({ apiUrl: `https://${host}`, timeoutMs: 300 });
    cleanups.push(() => cx.close());
    const c = (await rejection(cx.inspect(new Secret('ctx_hs_0001')))) as ApiError;
    expect(c.kind).toBe('transient');
    expect(c.message).toContain('no complete answer within 300 ms');
  });

  it('no answer after the request went out is transient but not notSent', async () => {
    const server = createServer(() => undefined);
    const host = await listen(server);
    cleanups.unshift(() => server.closeAllConnections());
    const e = (await rejection(client(`http://${host}`, 300).call(new Secret('tok_hang_0001'), { method: 'POST', path: '/x', doing: 'rotating' }))) as ApiError;
    expect([e.kind, e.notSent]).toEqual(['transient', false]);
    expect(e.message).toContain('no complete answer within 300 ms');
  });
});

describe('https', () => {
  it('TLS 1.3 to a server whose CA is in NODE_EXTRA_CA_CERTS works; without it the certificate is refused', async (ctx) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    } catch {
      ctx.skip(); // no openssl
    }
    let version = '';
    const server = createHttpsServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
      version = (req.socket as import('node:tls').TLSSocket).getProtocol() ?? '';
      res.end('{"over":"tls"}');
    });
    const host = await listen(server);
    // NODE_EXTRA_CA_CERTS is read once at process start: a child process on the built module.
    const script = `import { createTransport } from ${JSON.stringify(path.join(ROOT, 'dist/src/api/request.js'))};
const t = createTransport({ timeoutMs: 3000, maxBodyBytes: 1024, closeGraceMs: 100 });
try { const a = await t.send({ url: new URL('https://${host}/'), method: 'GET', headers: {} }); console.log(a.status, a.text); }
catch (e) { console.log('error', e.code); } finally { await t.close(); }`;
    const run = (env: Record<string, string>) =>
      new Promise<string>((resolve) => execFile(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '', ...env } }, (_e, out) => resolve(out.trim())));
    expect(await run({ NODE_EXTRA_CA_CERTS: path.join(dir, 'cert.pem') })).toBe('200 {"over":"tls"}');
    expect(version).toBe('TLSv1.3');
    expect(await run({})).toBe('error DEPTH_ZERO_SELF_SIGNED_CERT');
  });
});
