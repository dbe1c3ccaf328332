/**
 * doctor, broker side: where the tokens live, a local endpoint that is down while entries
 * use it, and (when broker mode is off) a mention of what it would change.
 */
import { stat } from 'node:fs/promises';
import type { Context } from '../context.js';
import { shq, type Finding } from '../doctor/finding.js';
import type { ScanResult } from '../scan.js';
import { BrokerRegistry } from './registry.js';
import { endpointFacts, endpointOwner, openBrokerStore } from './common.js';
import { readMoved } from './reroute.js';

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
  // A route secret is a credential: a config holding one must be private (the daemon narrows
  // it at start; this names one that was widened since, or that it could not narrow).
  for (const file of new Set(endpoints.map((e) => e.path))) {
    const st = await stat(file).catch(() => null);
    if (!st || (st.mode & 0o077) === 0) continue;
    out.push({
      id: 'broker-route-secret-permissions',
      severity: 'danger',
      file,
      message: `${file} holds a route secret of the local endpoint and can be read or changed by others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): on a system without the endpoint's peer-uid check (macOS, Windows), anyone who reads it can call your MCP servers through the endpoint as you.`,
      fix: `chmod 600 ${shq(file)} (and run "mcp-token-rotator revoke-now --yes" if others may have read it: that renews the route secrets)`,
    });
  }
  if (endpoints.length) {
    const ep = await endpointFacts(ctx);
    const owner = ep.port ? await endpointOwner(ctx, ep.port, ep.daemon) : null;
    const files = [...new Set(endpoints.map((e) => e.path))].join(', ');
    if (owner?.stranger) {
      out.push({
        id: 'broker-endpoint-stranger',
        severity: 'danger',
        message: `Port 127.0.0.1:${ep.port} of the local endpoint is held by another program${owner.holderUid !== null ? ` (uid ${owner.holderUid})` : ''}, not by this user's daemon: ${endpoints.length} remote entr${endpoints.length === 1 ? 'y sends' : 'ies send'} it their requests and route secrets (${files}).`,
        fix: ep.daemon
          ? 'Restart the daemon (systemctl --user restart mcp-token-rotator, or stop and start "mcp-token-rotator daemon"): it moves to a free port with new route secrets and rewrites the configs.'
          : 'Start the daemon ("mcp-token-rotator daemon", or systemctl --user start mcp-token-rotator): it moves to a free port with new route secrets and rewrites the configs.',
      });
    } else if (!owner?.answers) {
      out.push({
        id: 'broker-endpoint-down',
        severity: 'warn',
        message: `The local endpoint${ep.port ? ` (127.0.0.1:${ep.port})` : ''} is down; ${endpoints.length} remote entr${endpoints.length === 1 ? 'y uses' : 'ies use'} it and cannot connect (${files}).`,
        fix: ep.service ? 'Start the service (systemctl --user start mcp-token-rotator, or launchctl kickstart) and check its log.' : 'Run "mcp-token-rotator install-service" (or keep "mcp-token-rotator daemon" running).',
      });
    }
  }
  const moved = readMoved(ctx);
  // Told for a week: someone held the port and may have seen requests sent to it meanwhile.
  if (moved && Date.parse(moved.at) > ctx.now().getTime() - 7 * 86_400_000) {
    out.push({
      id: 'broker-endpoint-moved',
      severity: 'warn',
      message: `At ${moved.at} the local endpoint's port ${moved.from} was held by another program${moved.holderUid != null ? ` (uid ${moved.holderUid})` : ''}; the daemon moved to ${moved.to} with new route secrets and rewrote the configs. Clients that connected to port ${moved.from} while it was held sent that program their requests.`,
      fix: `Find out who held port ${moved.from}${moved.holderUid != null ? ` (uid ${moved.holderUid}: getent passwd ${moved.holderUid})` : ''}; restart MCP clients that do not reload their config; if tool calls may have been captured, run "mcp-token-rotator revoke-now --yes".`,
    });
  }
  return out;
}
