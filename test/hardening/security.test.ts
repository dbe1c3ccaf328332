/**
 * Security checks: no token in any child's argv or a hook's environment; no live token at
 * rest in the state directory after a finished rotation (raw bytes of the database, its WAL
 * and SHM, backups; the dead old token may rest in backups only); 0700/0600 modes whatever
 * the umask, the control socket 0600; TLS below 1.3 refused before the token is sent.

 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { CLI, findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { fingerprint } from '../../src/fingerprint.js';
import { FAST_SETTINGS, REGENERATE, makeWorld, liveToken, status, uniqueEmail } from './helpers.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

let homes: TempHome[] = [];
let daemon: SpawnedDaemon | undefined;
afterEach(async () => {
  await daemon?.stop('SIGKILL');
  daemon = undefined;
  for (const h of homes) await h.cleanup();
  homes = [];
});

/** Collects the argv of every process on the machine while it runs (children of the CLI included). */
function watchArgv(): { stop(): string[] } {
  const seen = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        seen.add(readFileSync(`/proc/${pid}/cmdline`).toString('latin1').replace(/\0/g, ' '));
      } catch {
        /* gone */
      }
    }
    timer = setTimeout(tick, 5);
  };
  tick();
  return {
    stop() {
      clearTimeout(timer);
      return [...seen];
    },
  };
}

/** Every file under the state directory with its mode, directories included. */
function modesUnder(dir: string): Array<{ p: string; mode: number; kind: 'dir' | 'file' | 'socket' }> {
  const out: Array<{ p: string; mode: number; kind: 'dir' | 'file' | 'socket' }> = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      const st = statSync(p);
      out.push({ p, mode: st.mode & 0o777, kind: st.isDirectory() ? 'dir' : st.isSocket() ? 'socket' : 'file' });
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function expectPrivateModes(stateDir: string): void {
  expect(statSync(stateDir).mode & 0o777, stateDir).toBe(0o700);
  for (const f of modesUnder(stateDir)) expect(f.mode, `${f.kind} ${f.p}`).toBe(f.kind === 'dir' ? 0o700 : 0o600);
}

const twoServers = (a: string, b: string): string =>
  JSON.stringify({ mcpServers: { work: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: a } }, personal: { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: b } } } }, null, 2) + '\n';

describe('no token in argv or in a hook environment', () => {
  it('a CLI rotation: hooks get fingerprints and files, never CERTORIX_API_TOKEN, even when the parent has it; no argv holds a token', async () => {
    const w = await makeWorld(api);
    homes.push(w.h);
    const out = w.h.path('hook');
    await mkdir(out);
    await w.h.settings({
      ...FAST_SETTINGS,
      hooks: { postRotate: [`env > "${out}/env.txt"`, `ps -eo args > "${out}/ps.txt"`, `tr '\\0' ' ' < /proc/$PPID/cmdline > "${out}/parent.txt"; sleep 0.1`] },
    });
    const argv = watchArgv();
    const r = await runCli(['rotate'], { env: { ...w.h.env, CERTORIX_API_TOKEN: w.tok, MCP_TOKEN_ROTATOR_LOG_LEVEL: 'trace' } });
    const seen = argv.stop();
    expect(r.code, r.stderr).toBe(0);
    const live = liveToken(api, w.email);
    const env = await readFile(path.join(out, 'env.txt'), 'utf8');
    expect(env).not.toMatch(/^CERTORIX_API_TOKEN=/m);
    expect(env).toContain(`MCP_TOKEN_ROTATOR_OLD_FINGERPRINT=${fingerprint(w.tok)}`);
    expect(env).toContain(`MCP_TOKEN_ROTATOR_NEW_FINGERPRINT=${fingerprint(live)}`);
    expect(env).toContain(w.h.path('.claude.json'));
    const ps = await readFile(path.join(out, 'ps.txt'), 'utf8');
    expect(ps).toContain(CLI); // the CLI was alive and listed while its hook ran
    expect(await readFile(path.join(out, 'parent.txt'), 'utf8')).toContain('rotate');
    expect(seen.some((a) => a.includes(CLI))).toBe(true);
    // Trace-level logs included: nothing the process printed or any process was given holds a token.
    expect(findLeaks([w.tok, live], [env, ps, r.stdout, r.stderr, ...seen])).toEqual([]);
  });

  it('a rotation run by the daemon (through its socket): the same, and the socket is 0600', async () => {
    const w = await makeWorld(api);
    homes.push(w.h);
    const out = w.h.path('hook');
    await mkdir(out);
    await w.h.settings({ ...FAST_SETTINGS, notify: false, hooks: { postRotate: [`env > "${out}/env.txt"; ps -eo args > "${out}/ps.txt"`] } });
    const argv = watchArgv();
    daemon = spawnDaemon({ ...w.h.env, CERTORIX_API_TOKEN: w.tok, MCP_TOKEN_ROTATOR_LOG_LEVEL: 'debug' });
    await daemon.waitFor((l) => l.msg === 'daemon started');
    const sock = path.join(w.h.stateDir, 'control.sock');
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expectPrivateModes(w.h.stateDir);

    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    const live = liveToken(api, w.email);
    await daemon.waitFor((l) => String(l.msg).startsWith('rotat') && l.newFingerprint === fingerprint(live));
    for (let i = 0; i < 100 && !existsSync(path.join(out, 'ps.txt')); i++) await new Promise((res) => setTimeout(res, 20));
    await new Promise((res) => setTimeout(res, 50));
    const seen = argv.stop();
    const env = await readFile(path.join(out, 'env.txt'), 'utf8');
    expect(env).not.toMatch(/^CERTORIX_API_TOKEN=/m);
    expect(env).toContain(`MCP_TOKEN_ROTATOR_NEW_FINGERPRINT=${fingerprint(live)}`);
    const ps = await readFile(path.join(out, 'ps.txt'), 'utf8');
    expect(findLeaks([w.tok, live], [env, ps, daemon.raw(), r.stdout, r.stderr, ...seen])).toEqual([]);
    expectPrivateModes(w.h.stateDir);
    expect((await daemon.stop('SIGTERM')).code).toBe(0);
    daemon = undefined;
  });
});

describe('no live token at rest in the state directory after a finished rotation', () => {
  /** Raw bytes of every state file; the old token may be in backups, nowhere else; no live token anywhere. */
  async function expectNothingLiveAtRest(h: TempHome, live: string[], dead: string[]): Promise<void> {
    const files = await h.stateFiles();
    expect(files.map((f) => path.basename(f.file))).toEqual(expect.arrayContaining(['rotator.db']));
    expect(files.some((f) => f.file.includes(`${path.sep}backups${path.sep}`)), 'a backup was kept').toBe(true);
    const leaks = files.flatMap((f) => findLeaks(live, [f.bytes]).map((t) => `${t} in ${path.relative(h.stateDir, f.file)}`));
    expect(leaks, 'live tokens at rest').toEqual([]);
    const outsideBackups = files.filter((f) => !f.file.includes(`${path.sep}backups${path.sep}`));
    expect(findLeaks(dead, outsideBackups.map((f) => f.bytes)), 'the journal is erased, not just unlinked').toEqual([]);
  }

  it('rotating one of two accounts in the same files: the other live token is blanked in backups; modes stay private under umask 000', async () => {
    const h = await makeHome(api.url);
    homes.push(h);
    await h.settings(FAST_SETTINGS);
    const ea = uniqueEmail('a');
    const eb = uniqueEmail('b');
    const a = api.addToken({ email: ea });
    const b = api.addToken({ email: eb });
    await h.write('.cursor/mcp.json', twoServers(a, b));
    await h.write('.bashrc', `export CERTORIX_API_TOKEN=${a}\n# personal: ${b}\n`);
    await h.write('.codex/config.toml', `[mcp_servers.work]\ncommand = "npx"\nenv = { CERTORIX_API_TOKEN = "${a}" }\n\n[mcp_servers.personal]\ncommand = "npx"\nenv = { CERTORIX_API_TOKEN = "${b}" }\n`);
    // The ".bashrc" comment holds b where no rewrite reaches: a rotation of b would refuse, a's must still not copy b out.
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('sh', ['-c', `umask 000; exec "${process.execPath}" "${CLI}" rotate --fingerprint ${fingerprint(a)}`], { env: h.env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    const na = liveToken(api, ea);
    expect(api.isLive(b)).toBe(true);
    expect(await h.read('.cursor/mcp.json')).toBe(twoServers(na, b));
    await expectNothingLiveAtRest(h, [na, b], [a]);
    expectPrivateModes(h.stateDir);
  });

  it('rotating both accounts of one file must not back up the first one\'s NEW token', async () => {
    // rotateTokens scans once; the second rotation's backup of the shared file already holds
    // the first rotation's new token, which is not in that scan, so it is not blanked.
    const h = await makeHome(api.url);
    homes.push(h);
    await h.settings(FAST_SETTINGS);
    const ea = uniqueEmail('a');
    const eb = uniqueEmail('b');
    const a = api.addToken({ email: ea });
    const b = api.addToken({ email: eb });
    await h.write('.cursor/mcp.json', twoServers(a, b));
    const r = await runCli(['rotate'], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const na = liveToken(api, ea);
    const nb = liveToken(api, eb);
    expect(await h.read('.cursor/mcp.json')).toBe(twoServers(na, nb));
    await expectNothingLiveAtRest(h, [na, nb], [a, b]);
  });

  it('a rotation finished by the next command (resumed from the journal) blanks the other account\'s live token in backups too', async () => {
    const h = await makeHome(api.url);
    homes.push(h);
    await h.settings(FAST_SETTINGS);
    const ea = uniqueEmail('a');
    const eb = uniqueEmail('b');
    const a = api.addToken({ email: ea });
    const b = api.addToken({ email: eb });
    await h.write('.cursor/mcp.json', twoServers(a, b));
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'status', status: 503 }, 3);
    const r = await runCli(['rotate', '--fingerprint', fingerprint(a)], { env: h.env });
    expect(r.code).toBe(2);
    await runCli(['scan', '--offline'], { env: h.env });
    const st = await runCli(['status', '--json'], { env: h.env });
    expect(st.code, st.stderr).toBe(0);
    const na = liveToken(api, ea);
    expect(await h.read('.cursor/mcp.json')).toBe(twoServers(na, b));
    await expectNothingLiveAtRest(h, [na, b], [a]);
  });

  it('another account\'s live token that JSON had to escape must be blanked in backups', async () => {
    const h = await makeHome(api.url);
    homes.push(h);
    await h.settings(FAST_SETTINGS);
    const ea = uniqueEmail('a');
    const a = api.addToken({ email: ea });
    const b = api.addToken({ email: uniqueEmail('b'), token: `ctx_quoted"Other\\Account${Date.now()}` });
    await h.write('.cursor/mcp.json', twoServers(a, b));
    const r = await runCli(['rotate', '--fingerprint', fingerprint(a)], { env: h.env });
    expect(r.code, r.stderr).toBe(0);
    const files = await h.stateFiles();
    expect(findLeaks([JSON.stringify(b).slice(1, -1), b], files.map((f) => f.bytes))).toEqual([]);
  });

  it('files a previous run or the user left wide open in the state directory are tightened', async () => {
    const w = await makeWorld(api);
    homes.push(w.h);
    await mkdir(path.join(w.h.stateDir, 'backups'), { recursive: true, mode: 0o755 });
    await chmod(w.h.stateDir, 0o755);
    await chmod(path.join(w.h.stateDir, 'backups'), 0o755);
    await writeFile(path.join(w.h.stateDir, 'backups', 'old.bak'), 'x', { mode: 0o644 });
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code, r.stderr).toBe(0);
    expectPrivateModes(w.h.stateDir);
  });

  it('an unfinished rotation keeps its tokens only in the 0600 journal, and erases them when it finishes', async () => {
    const w = await makeWorld(api);
    homes.push(w.h);
    api.fault({ method: 'POST', path: REGENERATE }, { kind: 'reset-after' }, 3);
    const r = await runCli(['rotate'], { env: w.h.env });
    expect(r.code).toBe(2);
    expectPrivateModes(w.h.stateDir);
    const done = await status(w);
    expect(done.code, done.stderr).toBe(0);
    const live = liveToken(api, w.email);
    const files = await w.h.stateFiles();
    expect(findLeaks([live], files.map((f) => f.bytes))).toEqual([]);
    expect(findLeaks([w.tok], files.filter((f) => !f.file.includes(`${path.sep}backups${path.sep}`)).map((f) => f.bytes))).toEqual([]);
    expectPrivateModes(w.h.stateDir);
  });
});

describe('TLS', () => {
  let certDir: string | undefined;
  let why: string | undefined;
  beforeAll(() => {
    certDir = mkdtempSync(path.join(tmpdir(), 'mtr-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')], { stdio: 'ignore' });
    } catch (e) {
      why = `openssl could not make a test certificate: ${(e as Error).message}`;
    }
  });
  afterAll(() => {
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  /** A stand-in API over TLS that answers GET /v1/token for any bearer, and counts what reached it. */
  async function tlsApi(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
    let n = 0;
    const server = createHttpsServer({ key: readFileSync(path.join(certDir!, 'key.pem')), cert: readFileSync(path.join(certDir!, 'cert.pem')), minVersion: 'TLSv1.2', maxVersion }, (req, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'tok_tls', role: 'viewer', email: 'tls@example.com', created_at: new Date().toISOString() }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      requests: () => n,
      close: () => new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
    };
  }

  it('an API that offers only TLS 1.2 is refused before the token is sent; TLS 1.3 with the same certificate works', async ({ skip }) => {
    if (why) skip(why);
    const h = await makeHome();
    homes.push(h);
    await h.settings(FAST_SETTINGS);
    const tok = 'ctx_TlsTestToken0123456789abcdefghijklmn';
    await h.write('.cursor/mcp.json', twoServers(tok, tok));
    const env = { ...h.env, NODE_EXTRA_CA_CERTS: path.join(certDir!, 'cert.pem') };
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const s = await tlsApi(version);
      try {
        const r = await runCli(['scan', '--json'], { env: { ...env, CERTORIX_API_URL: s.url } });
        const doc = JSON.parse(r.stdout) as { tokens: Array<{ role: string | null }>; warnings: string[] };
        if (version === 'TLSv1.2') {
          expect(s.requests(), 'no HTTP request (and so no bearer) reached a TLS 1.2 server').toBe(0);
          expect(doc.warnings.join('\n')).toMatch(/TLS 1\.3/);
          expect(doc.tokens[0]!.role).toBeNull();
        } else {
          expect(r.code, r.stderr).toBe(0);
          expect(s.requests()).toBe(1);
          expect(doc.tokens[0]!.role).toBe('viewer');
        }
        expect(findLeaks([tok], [r.stdout, r.stderr])).toEqual([]);
      } finally {
        await s.close();
      }
    }
  });
});

