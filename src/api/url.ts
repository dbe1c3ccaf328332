import { RotatorError } from '../errors.js';

const HINT =
  'Set "apiUrl" in the settings file (or CERTORIX_API_URL) to an https:// URL, e.g. https://api.certorix.com; plain http:// is allowed only for 127.0.0.1, ::1 and localhost.';

/**
 * Checks an API base URL before any token is sent to it. The bearer token travels in a
 * header, so plain http would put it on the wire in clear; loopback is exempt because it
 * never leaves the machine (local fakes, tunnels, test servers).
 */
export function validateApiUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new RotatorError('E_INSECURE_URL', `The API URL "${redactForMessage(url)}" is not a valid URL.`, { hint: HINT });
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // Not echoed: whatever sits in the userinfo part may itself be a credential.
    throw new RotatorError('E_INSECURE_URL', `The API URL for ${parsed.protocol}//${parsed.host} must not contain a user name or password.`, {
      hint: HINT,
    });
  }
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:') {
    if (isLoopbackHost(parsed.hostname)) return parsed;
    throw new RotatorError(
      'E_INSECURE_URL',
      `Refusing plain http:// for ${parsed.host}: the token would cross the network unencrypted.`,
      { hint: HINT },
    );
  }
  throw new RotatorError('E_INSECURE_URL', `The API URL scheme "${parsed.protocol}" is not supported (${parsed.origin === 'null' ? redactForMessage(url) : parsed.origin}).`, {
    hint: HINT,
  });
}

/**
 * `hostname` as the WHATWG parser leaves it: IPv4 in any notation (127.1, 0x7f.0.0.1,
 * 2130706433) is already normalised to dotted decimal and IPv6 to its compressed, bracketed
 * form, so string checks here cannot be dodged by an alternative spelling.
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === 'localhost') return true;
  if (h === '[::1]' || h === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function redactForMessage(url: string): string {
  // An unparseable URL may still carry userinfo; drop anything up to an '@'.
  const s = url.trim().replace(/\/\/[^/@]*@/, '//');
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
