import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';

/**
 * Broker mode's records in SQLite: slots (the stable names converted entries carry, each
 * following one token lineage across rotations) and converted entries. No token value is
 * stored here; an entry's original text keeps a marker where the token was.
 */

/** Stands where the token was in a recorded original entry text. */
export const TOKEN_MARKER = '\u0000CERTORIX_TOKEN\u0000';

export interface SlotRow {
  slot: string;
  fingerprint: string;
  createdAt: string;
  updatedAt: string;
}

export type EntryKind = 'exec' | 'headers-helper' | 'endpoint';

export interface BrokerEntryRow {
  id: number;
  path: string;
  client: string;
  server: string;
  keyPath: string;
  kind: EntryKind;
  slot: string;
  originalText: string;
  convertedText: string;
  upstreamUrl: string | null;
  routeSecret: string | null;
  enabledAt: string;
}

const SLOT_COLS = 'slot, fingerprint, created_at AS createdAt, updated_at AS updatedAt';
const ENTRY_COLS =
  'id, path, client, server, key_path AS keyPath, kind, slot, original_text AS originalText, converted_text AS convertedText, upstream_url AS upstreamUrl, route_secret AS routeSecret, enabled_at AS enabledAt';

/** A slot name safe in argv, a URL path and a keychain account: the provider's name (`certorix-`) and 8 hex. */
export function newSlotName(provider = 'certorix'): string {
  return (/^[a-z][a-z0-9]{1,30}$/.test(provider) ? provider : 'token') + '-' + randomBytes(4).toString('hex');
}

export const SLOT_PATTERN = /^[a-z][a-z0-9-]{2,63}$/;

/** A route secret for the local endpoint: 128 bits, URL-safe. */
export function newRouteSecret(): string {
  return randomBytes(16).toString('base64url');
}

export class BrokerRegistry {
  constructor(private readonly store: Store) {}

  slots(): SlotRow[] {
    return this.store.db.prepare(`SELECT ${SLOT_COLS} FROM broker_slots ORDER BY slot`).all() as SlotRow[];
  }

  slot(slot: string): SlotRow | null {
    return (this.store.db.prepare(`SELECT ${SLOT_COLS} FROM broker_slots WHERE slot = ?`).get(slot) as SlotRow | undefined) ?? null;
  }

  /** The slot following this fingerprint's lineage, if any. */
  slotForFingerprint(fp: string): SlotRow | null {
    return (this.store.db.prepare(`SELECT ${SLOT_COLS} FROM broker_slots WHERE fingerprint = ? ORDER BY slot LIMIT 1`).get(fp) as SlotRow | undefined) ?? null;
  }

  slotsForFingerprint(fp: string): SlotRow[] {
    return this.store.db.prepare(`SELECT ${SLOT_COLS} FROM broker_slots WHERE fingerprint = ? ORDER BY slot`).all(fp) as SlotRow[];
  }

  addSlot(slot: string, fingerprint: string, now: string): void {
    this.store.db.prepare('INSERT INTO broker_slots(slot, fingerprint, created_at, updated_at) VALUES (?, ?, ?, ?)').run(slot, fingerprint, now, now);
  }

  /** A rotation moved the lineage on: every slot of the old token now follows the new one. */
  moveSlots(oldFp: string, newFp: string, now: string): string[] {
    const moved = this.slotsForFingerprint(oldFp).map((s) => s.slot);
    this.store.db.prepare('UPDATE broker_slots SET fingerprint = ?, updated_at = ? WHERE fingerprint = ?').run(newFp, now, oldFp);
    return moved;
  }

  removeSlot(slot: string): void {
    this.store.db.prepare('DELETE FROM broker_slots WHERE slot = ?').run(slot);
  }

  entries(): BrokerEntryRow[] {
    return this.store.db.prepare(`SELECT ${ENTRY_COLS} FROM broker_entries ORDER BY path, key_path`).all() as BrokerEntryRow[];
  }

  entriesForSlot(slot: string): BrokerEntryRow[] {
    return this.store.db.prepare(`SELECT ${ENTRY_COLS} FROM broker_entries WHERE slot = ? ORDER BY path, key_path`).all(slot) as BrokerEntryRow[];
  }

  entryByRoute(secret: string): BrokerEntryRow | null {
    return (this.store.db.prepare(`SELECT ${ENTRY_COLS} FROM broker_entries WHERE route_secret = ?`).get(secret) as BrokerEntryRow | undefined) ?? null;
  }

  entry(path: string, keyPath: string): BrokerEntryRow | null {
    return (this.store.db.prepare(`SELECT ${ENTRY_COLS} FROM broker_entries WHERE path = ? AND key_path = ?`).get(path, keyPath) as BrokerEntryRow | undefined) ?? null;
  }

  addEntry(e: Omit<BrokerEntryRow, 'id'>): number {
    const r = this.store.db
      .prepare(
        `INSERT INTO broker_entries(path, client, server, key_path, kind, slot, original_text, converted_text, upstream_url, route_secret, enabled_at)
         VALUES (@path, @client, @server, @keyPath, @kind, @slot, @originalText, @convertedText, @upstreamUrl, @routeSecret, @enabledAt)`,
      )
      .run(e);
    return Number(r.lastInsertRowid);
  }

  /** A heal wrote the entry's broker form again (from its current text). */
  setConvertedText(id: number, text: string): void {
    this.store.db.prepare('UPDATE broker_entries SET converted_text = ? WHERE id = ?').run(text, id);
  }

  /** A renewed route secret (revoke-now, a port move) and the converted text that carries it. */
  setRoute(id: number, routeSecret: string, convertedText: string): void {
    this.store.db.prepare('UPDATE broker_entries SET route_secret = ?, converted_text = ? WHERE id = ?').run(routeSecret, convertedText, id);
  }

  removeEntry(id: number): void {
    this.store.db.prepare('DELETE FROM broker_entries WHERE id = ?').run(id);
  }
}
