/**
 * What the relay needs to know of one newline-delimited JSON-RPC message: its id, its
 * method, and whether it is a response. Everything else passes through untouched, so a
 * method this code has never heard of is relayed as is.
 */
export type JsonRpcId = string | number;

export interface Parsed {
  /** 'request' has id+method; 'notification' only method; 'response' only id; 'other' anything else (a batch, garbage). */
  kind: 'request' | 'notification' | 'response' | 'other';
  id?: JsonRpcId;
  method?: string;
  /** notifications/cancelled: the request it cancels. */
  cancels?: JsonRpcId;
  /** initialize response: the negotiated protocol version. */
  protocolVersion?: string;
  /** resources/subscribe|unsubscribe: the uri. */
  uri?: string;
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

export function parseMessage(line: string): Parsed {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { kind: 'other' };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { kind: 'other' };
  const m = v as { id?: unknown; method?: unknown; params?: { requestId?: unknown; uri?: unknown }; result?: { protocolVersion?: unknown } };
  const method = typeof m.method === 'string' ? m.method : undefined;
  if (method !== undefined) {
    const p: Parsed = isId(m.id) ? { kind: 'request', id: m.id, method } : { kind: 'notification', method };
    if (method === 'notifications/cancelled' && isId(m.params?.requestId)) p.cancels = m.params.requestId;
    if ((method === 'resources/subscribe' || method === 'resources/unsubscribe') && typeof m.params?.uri === 'string') p.uri = m.params.uri;
    return p;
  }
  if (isId(m.id) || m.id === null) {
    const p: Parsed = { kind: 'response', ...(isId(m.id) ? { id: m.id } : {}) };
    if (typeof m.result?.protocolVersion === 'string') p.protocolVersion = m.result.protocolVersion;
    return p;
  }
  return { kind: 'other' };
}

/** The same message with another id (server-to-client request ids are remapped across a swap). */
export function withId(line: string, id: JsonRpcId): string {
  const v = JSON.parse(line) as Record<string, unknown>;
  v.id = id;
  return JSON.stringify(v);
}

export function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n${id}` : `s${id}`;
}

export function errorResponse(id: JsonRpcId, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } });
}
