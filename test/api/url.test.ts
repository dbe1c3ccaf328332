import { describe, expect, it } from 'vitest';
import { RotatorError } from '../../src/errors.js';
import { isLoopbackHost, validateApiUrl } from '../../src/api/url.js';

describe('validateApiUrl', () => {
  it.each([
    ['https://api.certorix.com', 'https://api.certorix.com'],
    ['https://api.certorix.com/', 'https://api.certorix.com'],
    ['https://eu.certorix.com:8443/base/', 'https://eu.certorix.com:8443'],
    ['  https://api.certorix.com  ', 'https://api.certorix.com'],
    ['HTTPS://API.CERTORIX.COM', 'https://api.certorix.com'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://127.255.255.254', 'http://127.255.255.254'],
    ['http://127.1', 'http://127.0.0.1'],
    ['http://0x7f.0.0.1', 'http://127.0.0.1'],
    ['http://2130706433', 'http://127.0.0.1'],
    ['http://localhost:3000', 'http://localhost:3000'],
    ['http://LOCALHOST', 'http://localhost'],
    ['http://[::1]:9000', 'http://[::1]:9000'],
    ['http://[0:0:0:0:0:0:0:1]', 'http://[::1]'],
  ])('accepts %s', (input, origin) => {
    expect(validateApiUrl(input).origin).toBe(origin);
  });

  it.each([
    ['http://api.certorix.com', /plain http/],
    ['http://10.0.0.5', /plain http/],
    ['http://128.0.0.1', /plain http/],
    ['http://126.0.0.1', /plain http/],
    ['http://0.0.0.0', /plain http/],
    ['http://[::]', /plain http/],
    ['http://[::2]', /plain http/],
    ['http://[::ffff:7f00:1]', /plain http/],
    ['http://localhost.evil.com', /plain http/],
    ['http://127.0.0.1.nip.io', /plain http/],
    ['http://evil.localhost', /plain http/],
    ['ftp://api.certorix.com', /scheme "ftp:"/],
    ['ws://127.0.0.1', /scheme "ws:"/],
    ['file:///etc/passwd', /scheme "file:"/],
    ['javascript:alert(1)', /scheme "javascript:"/],
    ['api.certorix.com', /not a valid URL/],
    ['', /not a valid URL/],
    ['https://user:ctx_secret_in_url@api.certorix.com', /user name or password/],
  ])('refuses %s', (input, message) => {
    let err: unknown;
    try {
      validateApiUrl(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RotatorError);
    const re = err as RotatorError;
    expect(re.code).toBe('E_INSECURE_URL');
    expect(re.message).toMatch(message);
    expect(re.hint).toMatch(/apiUrl/);
    expect(re.hint).toMatch(/CERTORIX_API_URL/);
  });

  it('never echoes credentials found in the URL', () => {
    for (const input of ['https://user:ctx_secret_in_url@api.certorix.com', 'notaurl://ctx_secret_in_url@x y']) {
      try {
        validateApiUrl(input);
        expect.unreachable();
      } catch (e) {
        expect(JSON.stringify(e)).not.toContain('ctx_secret_in_url');
        expect((e as Error).message).not.toContain('ctx_secret_in_url');
      }
    }
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.0.0.256', false],
    ['[::1]', true],
    ['::1', true],
    ['example.com', false],
    ['127.example.com', false],
  ])('%s -> %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});
