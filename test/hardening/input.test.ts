/**
 * Hostile and bad input: settings files, the API URL from the environment, stdin for
 * set-token, fingerprints and argv. Each is refused with a message that names what is wrong
 * (the file and field, the flag) and the right exit code, and nothing runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';
import { CLI, findLeaks, makeHome, runCli, type TempHome } from '../helpers/home.js';
import { fingerprint } from '../../src/fingerprint.js';
import { makeWorld, regenerateRequests, snapshot, type World } from './helpers.js';

let api: FakeCertorix;
beforeAll(async () => {
  api = await startFakeCertorix();
});
afterAll(async () => {
  await api.close();
});

describe.concurrent('every settings error names the file and the field, exits 2, and nothing runs', () => {
  const cases: Array<[string, unknown, string]> = [
    ['a wrong type', { warnAfterDays: 'ninety' }, 'warnAfterDays'],
    ['a wrong nested type', { retry: { attempts: '3' } }, 'retry.attempts'],
    ['a number out of range', { requestTimeoutMs: 0 }, 'requestTimeoutMs'],
    ['retry.maxMs below retry.baseMs', { retry: { attempts: 3, baseMs: 500, maxMs: 10 } }, 'retry.maxMs'],
    ['hooks.postRotate as a string', { hooks: { postRotate: 'systemctl restart x' } }, 'hooks.postRotate'],
    ['an unknown key', { warnAfterDay: 90 }, 'warnAfterDay'],
    ['an unknown nested key', { hooks: { postrotate: [] } }, 'hooks.postrotate'],
    ['a cron that is not one', { autoRotate: { cron: 'every monday' } }, 'autoRotate.cron'],
    ['a cron with a field out of range', { autoRotate: { cron: '61 * * * *' } }, 'autoRotate.cron'],
    ['a cron with a zero step', { autoRotate: { cron: '*/0 * * * *' } }, 'autoRotate.cron'],
    ['a glob with an unbalanced bracket', { extraConfigs: ['~/code/[*/.mcp.json'] }, 'extraConfigs.0'],
    ['an empty glob', { extraConfigs: ['~/a.json', ''] }, 'extraConfigs.1'],
    ['plain http to a remote host', { apiUrl: 'http://api.certorix.com' }, 'apiUrl'],
    ['plain http to a host that only looks like loopback', { apiUrl: 'http://127.0.0.1.nip.io' }, 'apiUrl'],
    ['plain http to localhost as a subdomain', { apiUrl: 'http://localhost.evil.example' }, 'apiUrl'],
    ['an unsupported scheme', { apiUrl: 'ftp://api.certorix.com' }, 'apiUrl'],
    ['credentials in the URL', { apiUrl: 'https://me:hunter2secret@api.certorix.com' }, 'apiUrl'],
  ];
  it.each(cases)('%s', async (_name, settings, field) => {
    const h = await makeHome(api.url);
    try {
      await h.settings(settings as Record<string, unknown>);
      const r = await runCli(['status', '--json'], { env: h.env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(h.path('.config/mcp-token-rotator/config.json'));
      expect(r.stderr).toContain(`"${field}"`);
      expect(r.stderr).not.toContain('hunter2secret');
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
      expect(existsSync(h.stateDir)).toBe(false);
    } finally {
      await h.cleanup();
    }
  });

  it.each([
    ['plain http to a remote host', 'http://api.certorix.com'],
    ['plain http to an IPv4-mapped address', 'http://[::ffff:7f00:1]:8080'],
  ])('CERTORIX_API_URL with %s is refused the same way, for every command', async (_name, url) => {
    const h = await makeHome(url);
    try {
      for (const cmd of [['status'], ['scan'], ['rotate', '--dry-run']]) {
        const r = await runCli(cmd, { env: h.env });
        expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain('CERTORIX_API_URL');
        expect(r.stderr).toMatch(/Refusing plain http/);
      }
      expect(existsSync(h.stateDir)).toBe(false);
    } finally {
      await h.cleanup();
    }
  });

  it.each([
    ['not JSON', '{ nope', /not valid JSON/],
    ['a JSON array', '[1, 2]', /must hold a JSON object/],
    ['JSON null', 'null', /must hold a JSON object/],
  ])('a settings file that is %s', async (_name, text, message) => {
    const h = await makeHome(api.url);
    try {
      await h.write('.config/mcp-token-rotator/config.json', text);
      const r = await runCli(['scan'], { env: h.env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(h.path('.config/mcp-token-rotator/config.json'));
      expect(r.stderr).toMatch(message);
      expect(existsSync(h.stateDir)).toBe(false);
    } finally {
      await h.cleanup();
    }
  });

  it('--config naming a missing file or a directory', async () => {
    const h = await makeHome(api.url);
    try {
      const missing = await runCli(['status', '--config', h.path('nope.json')], { env: h.env });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain(h.path('nope.json'));
      expect(missing.stderr).toMatch(/not found/);
      const dir = await runCli(['status', '--config', h.home], { env: h.env });
      expect(dir.code).toBe(2);
      expect(dir.stderr).toContain(h.home);
      expect(dir.stderr).toMatch(/EISDIR/);
    } finally {
      await h.cleanup();
    }
  });
});

/** Spawns set-token with raw bytes on stdin; a CLI that stops reading early must not crash the test (EPIPE). */
function setToken(env: Record<string, string>, input: Buffer | string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'set-token', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`set-token timed out\n${stderr}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('set-token refuses bad stdin without echoing it, and changes nothing', () => {
  let w: World;
  let before: string[];
  beforeAll(async () => {
    w = await makeWorld(api);
    before = await snapshot(w);
  });
  afterAll(() => w.h.cleanup());

  it.each([
    ['empty', '', /No token on stdin/],
    ['whitespace only', '  \n\t\r\n  ', /No token on stdin/],
    ['two lines', 'ctx_FirstLineSecret0123456789\nctx_SecondLineSecret0123456789\n', /more than one line/],
    ['two words', 'ctx_WordOneSecret0123456789 ctx_WordTwoSecret0123456789', /more than one line or word/],
    ['huge (1 MB)', 'ctx_HugeSecretPrefix' + 'x'.repeat(1024 * 1024), /larger than/],
  ])('%s', async (_name, input, message) => {
    const r = await setToken(w.h.env, input);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    for (const word of input.split(/\s+/).filter((s) => s.length >= 8)) expect(r.stderr.includes(word.slice(0, 24)), 'input echoed').toBe(false);
    expect(await snapshot(w)).toEqual(before);
    expect(api.isLive(w.tok)).toBe(true);
  });

  it('control characters inside the token: refused as unusable, named by fingerprint only', async () => {
    const bad = 'ctx_Control\u0001CharSecret0123456789';
    const r = await setToken(w.h.env, bad + '\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(fingerprint(bad));
    expect(r.stderr).not.toContain('CharSecret');
    expect(await snapshot(w)).toEqual(before);
  });

  it('a token the API does not know: refused before any file is touched', async () => {
    const r = await setToken(w.h.env, 'ctx_NotKnownToTheApiAtAll0123456789\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rejects the token/);
    expect(r.stderr).not.toContain('ctx_NotKnownToTheApiAtAll');
    expect(await snapshot(w)).toEqual(before);
  });

  it('a well-formed --fingerprint that is not tracked: exit 2 naming it, nothing written', async () => {
    const other = api.addToken({ email: w.email });
    const r = await setToken(w.h.env, other + '\n', ['--fingerprint', 'abcdef012345']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('abcdef012345');
    expect(findLeaks([other, w.tok], [r.stdout, r.stderr])).toEqual([]);
    expect(await snapshot(w)).toEqual(before);
  });

  it('a malformed --fingerprint: exit 64 before stdin is even read', async () => {
    const r = await setToken(w.h.env, 'ctx_ShouldNeverBeReadSecret0123\n', ['--fingerprint', 'XYZ']);
    expect(r.code).toBe(64);
    // Never echoed (it could be a token): named as "the value you passed", with its fingerprint.
    expect(r.stderr).not.toContain('XYZ');
    expect(r.stderr).toContain('The value you passed is not one');
    expect(r.stderr).not.toContain('ShouldNeverBeRead');
  });
});

describe('set-token accepts what a clipboard really gives', () => {
  it('a token with a BOM and CRLF around it is adopted without them', async () => {
    const w = await makeWorld(api);
    try {
      await runCli(['scan'], { env: w.h.env });
      const fresh = api.addToken({ email: w.email });
      const r = await setToken(w.h.env, `\uFEFF  ${fresh}\r\n`);
      expect(r.code, r.stderr).toBe(0);
      for (const f of w.fixtures) expect(await w.h.read(f.rel), f.client).toBe(f.content(fresh));
      expect(findLeaks([fresh, w.tok], [r.stdout, r.stderr])).toEqual([]);
    } finally {
      await w.h.cleanup();
    }
  });
});

describe('fingerprints and argv', () => {
  let h: TempHome;
  let w: World;
  beforeAll(async () => {
    w = await makeWorld(api);
    h = w.h;
  });
  afterAll(() => h.cleanup());

  it('rotate --fingerprint that is well-formed but not tracked: a usage error (64) naming it; nothing called', async () => {
    const before = regenerateRequests(api).length;
    const r = await runCli(['rotate', '--fingerprint', '0123456789ab'], { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('0123456789ab');
    expect(r.stderr).toMatch(/status/); // the hint: where to see the tracked ones
    expect(regenerateRequests(api).length).toBe(before);
    expect(api.isLive(w.tok)).toBe(true);
  });

  it.each([['xyz'], ['0123456789AB'], ['0123456789abc'], ['0123456789a'], ['']])('rotate --fingerprint %j: exit 64', async (fp) => {
    const r = await runCli(['rotate', `--fingerprint=${fp}`], { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--fingerprint/);
  });

  it.each([
    [['frobnicate'], 'frobnicate'],
    [['status', '--bogus'], '--bogus'],
    [['rotate', '--json', '--bogus'], '--bogus'],
    // A positional or a bad value is never echoed (it could be a token): the message names the option or says so.
    [['status', 'extra'], 'the value you passed is not shown'],
    [['rotate', '--fingerprint'], '--fingerprint'],
    [['history', '--limit', 'abc'], '--limit'],
    [['--json'], '--json'],
  ])('%j: exit 64, names the culprit on stderr, points to --help, nothing on stdout', async (args, culprit) => {
    const r = await runCli(args, { env: h.env });
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(culprit);
    expect(r.stderr).toMatch(/--help/);
  });

  // Usage errors (exit 64) show the synopsis on stderr; a bare invocation too.
  it('a usage error prints the usage synopsis on stderr, and a bare invocation its help there too', async () => {
    for (const args of [['frobnicate'], ['status', '--bogus'], ['rotate', '--fingerprint', 'xyz'], []]) {
      const r = await runCli(args, { env: h.env });
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(/^Usage: mcp-token-rotator /m);
    }
  });

  it('--help of every command exits 0 with its usage on stdout', async () => {
    for (const cmd of ['scan', 'status', 'rotate', 'revoke-now', 'set-token', 'history', 'daemon', 'doctor']) {
      const r = await runCli([cmd, '--help'], { env: h.env });
      expect(r.code, cmd).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: mcp-token-rotator ${cmd}`));
    }
  });
});
