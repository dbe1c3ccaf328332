/**
 * YAML (Continue, Goose) into the neutral tree. Every document of a multi-document stream
 * is searched; their key paths then start with the document's index.
 */
import type { Document, Node, YAMLError } from 'yaml';
import { yaml } from './lazy.js';
import type { PNode, TreeDoc, TreeResult } from './formats.js';

type AnyDoc = Document.Parsed;

function parseDocs(text: string): AnyDoc[] {
  const docs = yaml().parseAllDocuments(text, { prettyErrors: true });
  // An empty stream comes back as a non-array "EmptyStream".
  return Array.isArray(docs) ? docs : [];
}

/** Code and position only: yaml's own messages quote the offending source line. */
function describe(kind: string, e: YAMLError): string {
  const at = e.linePos ? ` at ${e.linePos[0].line}:${e.linePos[0].col}` : '';
  return `YAML ${kind}${at}: ${e.code}`;
}

export function locateYamlTrees(text: string): TreeResult {
  const docs = parseDocs(text);
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const d of docs) {
    for (const e of d.errors) errors.push(describe('parse error', e));
    for (const w of d.warnings) warnings.push(describe('warning', w));
  }
  if (errors.length > 0) return { docs: [], errors, warnings };
  const out: TreeDoc[] = docs.map((doc, i) => {
    const ctx: Ctx = { doc, aliases: 0 };
    const root = convert(doc.contents, ctx, 0);
    if (ctx.aliases > MAX_ALIASES) warnings.push(`YAML: too many aliases in document ${i + 1}; the excess was not searched`);
    return { root, prefix: docs.length > 1 ? [i] : [] };
  });
  return { docs: out, errors: [], warnings };
}

// Aliases are expanded so a token reached through one is found; a "billion laughs" file
// (aliases of aliases) must not make that expansion explode or recurse forever.
const MAX_DEPTH = 200;
const MAX_ALIASES = 10_000;

interface Ctx {
  doc: AnyDoc;
  aliases: number;
}

function convert(node: unknown, ctx: Ctx, depth: number): PNode {
  if (depth > MAX_DEPTH) return { t: 'other' };
  if (yaml().isAlias(node)) {
    if (++ctx.aliases > MAX_ALIASES) return { t: 'other' };
    const target = node.resolve(ctx.doc);
    return target ? convert(target, ctx, depth + 1) : { t: 'other' };
  }
  const pos = (node as Node | null)?.range?.[0];
  if (yaml().isMap(node)) {
    const entries = new Map<string, PNode>();
    for (const pair of node.items) {
      if (!yaml().isPair(pair)) continue;
      const key = yaml().isScalar(pair.key) ? String(pair.key.value) : pair.key === null ? '' : undefined;
      if (key === undefined) continue;
      entries.delete(key);
      entries.set(key, convert(pair.value, ctx, depth + 1));
    }
    return { t: 'obj', entries, pos };
  }
  if (yaml().isSeq(node)) return { t: 'arr', items: node.items.map((n) => convert(n, ctx, depth + 1)), pos };
  if (yaml().isScalar(node) && typeof node.value === 'string' && node.range) {
    return { t: 'str', value: node.value, lit: { start: node.range[0], end: node.range[1] }, pos };
  }
  return { t: 'other', pos };
}

/** Plain JS values of every document, as the edit verifier compares them (key paths as in `locateYamlTrees`). */
export function parseYamlValue(text: string): unknown {
  const docs = parseDocs(text);
  if (docs.some((d) => d.errors.length > 0)) throw new Error('YAML parse error');
  const values = docs.map((d) => d.toJS() as unknown);
  return docs.length > 1 ? values : values[0];
}
