/** The API: a safe URL (https, or http to loopback only) and a TLS 1.3 handshake with it. */
import net from 'node:net';
import tls from 'node:tls';
import { isLoopbackHost, validateApiUrl } from '../api/url.js';
import { RotatorError } from '../errors.js';
import type { Finding } from './finding.js';

/** The API URL from the settings: https, or plain http only for loopback. */
export function checkApiUrl(url: string, settingsFile: string): { finding: Finding | null; parsed: URL | null } {
  try {
    return { finding: null, parsed: validateApiUrl(url) };
  } catch (e) {
    const msg = e instanceof RotatorError ? e.message : String(e);
    return {
      finding: {
        id: 'api-url',
        severity: 'danger',
        file: settingsFile,
        message: msg,
        fix: 'Set "apiUrl" (or CERTORIX_API_URL) to an https:// URL such as https://api.certorix.com; plain http:// only for 127.0.0.1, ::1 or localhost.',
      },
      parsed: null,
    };
  }
}

export interface ProbeResult {
  ok: boolean;
  /** Negotiated TLS version (e.g. "TLSv1.3"), or "http" for plain loopback. */
  protocol?: string;
  error?: string;
}

export function checkApiProbe(url: URL, r: ProbeResult, settingsFile: string): Finding {
  const shown = url.origin + (url.pathname === '/' ? '' : url.pathname);
  if (r.ok) {
    const how = r.protocol === 'http' ? 'plain http (loopback only: it never leaves this machine)' : (r.protocol ?? 'TLS');
    return { id: 'api-reachable', severity: 'ok', message: `The API at ${shown} is reachable over ${how}.`, fix: '' };
  }
  return {
    id: 'api-reachable',
    severity: 'warn',
    message: `The API at ${shown} is not reachable: ${r.error ?? 'unknown error'}. Rotation and token checks need it.`,
    fix: `Check the network, any HTTPS proxy, and "apiUrl" in ${settingsFile} (or CERTORIX_API_URL); the API must offer TLS 1.3 with a trusted certificate.`,
  };
}

export interface ProbeOptions {
  timeoutMs?: number;
  /** Extra trusted CA (tests with a self-signed server). */
  ca?: string | Buffer;
}

/**
 * One TLS 1.3 handshake with the API host (certificate checked as the real client checks
 * it), or a TCP connect for plain http on loopback. No HTTP request and no token is sent.
 */
export function probeApi(url: URL, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const https = url.protocol === 'https:';
  const port = Number(url.port || (https ? 443 : 80));
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult, sock: net.Socket) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(r);
    };
    let sock: net.Socket;
    if (https) {
      const s = tls.connect({
        host,
        port,
        ...(net.isIP(host) ? {} : { servername: host }),
        minVersion: 'TLSv1.3',
        ALPNProtocols: ['http/1.1'],
        ...(opts.ca ? { ca: opts.ca } : {}),
      });
      s.once('secureConnect', () => finish({ ok: true, protocol: s.getProtocol() ?? 'TLS' }, s));
      sock = s;
    } else {
      if (!isLoopbackHost(url.hostname)) {
        resolve({ ok: false, error: 'plain http is refused for a host that is not loopback' });
        return;
      }
      sock = net.connect({ host, port });
      sock.once('connect', () => finish({ ok: true, protocol: 'http' }, sock));
    }
    sock.setTimeout(timeoutMs, () => finish({ ok: false, error: `no answer within ${Math.round(timeoutMs / 1000)} s` }, sock));
    sock.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: describeNetError(e) }, sock));
  });
}

function describeNetError(e: NodeJS.ErrnoException): string {
  const code = e.code ?? '';
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|NO_PROTOCOLS_AVAILABLE/i.test(code + e.message)) {
    return `the server does not offer TLS 1.3 (${code || e.message})`;
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME|ERR_TLS_CERT/i.test(code)) return `its certificate is not trusted (${code})`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name does not resolve (${code})`;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)';
  return code ? `${code}: ${e.message}` : e.message;
}
