/**
 * `broker status`: every entry holding (or standing in for) a Certorix token, with its
 * mode, why it is plaintext when it is, where the tokens live, and whether the local
 * endpoint answers. Read-only: no lock, no write.
 */
import type { Context } from '../context.js';
import { keyPathString, readConfigFile } from '../clients/discover.js';
import type { KeyPath } from '../clients/formats.js';
import { fingerprint } from '../fingerprint.js';
import { findTokens, type ScanResult } from '../scan.js';
import { BrokerRegistry } from './registry.js';
import { planFile } from './convert/file.js';
import { locateEntry } from './convert/positions.js';
import { readMoved, type MovedNote } from './reroute.js';
import { endpointFacts, endpointOwner, formatOf, modeOf, NO_ENDPOINT_REASON, openBrokerStore, targetFor, type BrokerEntryRef } from './common.js';

export interface BrokerStatusEntry extends BrokerEntryRef {
  slot?: string;
  /** Converted entries: "ok", "changed" (edited since enable) or "missing" (no longer in the file). */
  state?: 'ok' | 'changed' | 'missing';
  reason?: string;
}

export interface BrokerStatus {
  enabled: boolean;
  store: { backend: string; where: string };
  endpoint: {
    port: number | null;
    daemon: boolean;
    service: boolean;
    /** The daemon serves the port (null: not checked). */
    up: boolean | null;
    entries: number;
    /** Something that is NOT this user's daemon holds the port: clients would talk to it. */
    stranger: boolean;
    /** Linux: the uid listening on the port, when something does. */
    holderUid: number | null;
    /** The daemon moved off a taken port (when, from, to). */
    moved: MovedNote | null;
  };
  entries: BrokerStatusEntry[];
}

export async function brokerStatus(ctx: Context, scanIn?: ScanResult): Promise<BrokerStatus> {
  const reg = new BrokerRegistry(ctx.store);
  const store = await openBrokerStore(ctx);
  const scan = scanIn ?? (await findTokens(ctx));
  const ep = await endpointFacts(ctx);
  const rows = reg.entries();
  const slotFp = new Map(reg.slots().map((s) => [s.slot, s.fingerprint]));
  const entries: BrokerStatusEntry[] = [];
  const converted = new Set<string>();
  for (const r of rows) {
    converted.add(`${r.path}\u0000${r.keyPath}`);
    let state: BrokerStatusEntry['state'] = 'missing';
    try {
      const snap = await readConfigFile(r.path);
      const loc = locateEntry(snap.text, formatOf(ctx, r.path, r.client), JSON.parse(r.keyPath) as KeyPath);
      if (loc) state = snap.text.slice(loc.start, loc.end) === r.convertedText ? 'ok' : 'changed';
    } catch {
      // gone: missing
    }
    entries.push({ path: r.path, client: r.client, server: r.server, keyPath: r.keyPath, mode: modeOf(r.kind), fingerprint: slotFp.get(r.slot) ?? '?', slot: r.slot, state });
  }
  const endpointOk = ep.daemon || ep.service;
  for (const c of scan.configs) {
    if (!c.sites.length || !c.snapshot || c.status !== 'ok') continue;
    let plans;
    try {
      plans = planFile(c.snapshot.text, c.candidate.format, c.candidate.client, () =>
        targetFor(ctx, 'certorix-00000000', endpointOk ? { origin: `http://127.0.0.1:${ep.port ?? 0}`, routeSecret: 'x' } : null),
        { hosts: ctx.settings.mcpHosts },
      ).entries;
    } catch {
      continue;
    }
    for (const e of plans) {
      const keyPath = keyPathString(e.entryPath as KeyPath);
      // A converted entry holding plaintext again (a client restored it): listed as such.
      const wasConverted = converted.has(`${c.candidate.path}\u0000${keyPath}`);
      const reason =
        e.plan.mode === 'plaintext'
          ? e.plan.reason
          : wasConverted
            ? 'the entry was converted, but holds a plaintext token again (a client restored its copy); the daemon heals it, or run "broker enable"'
            : 'not converted yet: run "mcp-token-rotator broker enable"';
      entries.push({ path: c.candidate.path, client: c.candidate.client, server: e.server, keyPath, mode: 'plaintext', fingerprint: fingerprint(e.plan.token), reason });
    }
  }
  const nEndpoint = rows.filter((r) => r.kind === 'endpoint').length;
  const owner = ep.port && (nEndpoint > 0 || ep.daemon) ? await endpointOwner(ctx, ep.port, ep.daemon) : null;
  const up = owner ? owner.answers && !owner.stranger : null;
  return {
    enabled: rows.length > 0,
    store: { backend: store.backend, where: store.where },
    endpoint: { port: ep.port, daemon: ep.daemon, service: ep.service, up, entries: nEndpoint, stranger: owner?.stranger ?? false, holderUid: owner?.holderUid ?? null, moved: readMoved(ctx) },
    entries,
  };
}

export { NO_ENDPOINT_REASON };
