/**
 * doctor, broker side: where the tokens live, a local endpoint that is down while entries
 * use it, and (when broker mode is off) a mention of what it would change.
 */
import type { Context } from '../context.js';
import type { Finding } from '../doctor/finding.js';
import type { ScanResult } from '../scan.js';
import { BrokerRegistry } from './registry.js';
import { endpointFacts, openBrokerStore, portAnswers } from './common.js';

export async function brokerFindings(ctx: Context, scan: ScanResult): Promise<Finding[]> {
  const reg = new BrokerRegistry(ctx.store);
  const rows = reg.entries();
  const out: Finding[] = [];
  const plaintext = [...scan.tokens.values()].reduce((n, t) => n + t.sites.filter((s) => s.site.kind !== 'shell').length, 0);
  if (!rows.length) {
    if (plaintext) {
      out.push({
        id: 'broker-off',
        severity: 'ok',
        message: `Broker mode is off: ${plaintext} config entr${plaintext === 1 ? 'y holds' : 'ies hold'} a token in plaintext, and a rotation needs the clients restarted. "mcp-token-rotator broker enable" moves the token into the keychain and lets rotations go unnoticed.`,
        fix: '',
      });
    }
    return out;
  }
  const store = await openBrokerStore(ctx);
  out.push({ id: 'broker-store', severity: 'ok', message: `Broker mode: ${rows.length} converted entr${rows.length === 1 ? 'y' : 'ies'}; tokens in the ${store.backend} store (${store.where}).`, fix: '' });
  for (const s of reg.slots()) {
    const t = await store.read(s.slot).catch(() => null);
    if (!t || t.fingerprint !== s.fingerprint) {
      out.push({
        id: 'broker-store-missing',
        severity: 'danger',
        fingerprint: s.fingerprint,
        message: `The ${store.backend} store has no current token for slot ${s.slot} (token ${s.fingerprint}); the entries using it cannot start.`,
        fix: `Pipe the current token to "mcp-token-rotator set-token --fingerprint ${s.fingerprint}", or run "mcp-token-rotator broker disable".`,
      });
    }
  }
  const endpoints = rows.filter((r) => r.kind === 'endpoint');
  if (endpoints.length) {
    const ep = await endpointFacts(ctx);
    const up = ep.port ? await portAnswers(ep.port) : false;
    if (!up) {
      out.push({
        id: 'broker-endpoint-down',
        severity: 'warn',
        message: `The local endpoint${ep.port ? ` (127.0.0.1:${ep.port})` : ''} is down; ${endpoints.length} remote entr${endpoints.length === 1 ? 'y uses' : 'ies use'} it and cannot connect (${[...new Set(endpoints.map((e) => e.path))].join(', ')}).`,
        fix: ep.service ? 'Start the service (systemctl --user start mcp-token-rotator, or launchctl kickstart) and check its log.' : 'Run "mcp-token-rotator install-service" (or keep "mcp-token-rotator daemon" running).',
      });
    }
  }
  return out;
}
