/**
 * YAML (Continue, Goose) into the neutral tree. Every document of a multi-document stream
 * is searched; their key paths then start with the document's index.
 */
import type { Document, Node, YAMLError } from 'yaml';
import { yaml } from './lazy.js';
import type { PNode, TreeDoc, TreeResult } from './formats.js';
import { lineCol } from './locate-json.js';

type AnyDoc = Document.Parsed;

/**
 * yaml's own duplicate-key check compares each key with every earlier one of its map,
 * quadratic in the map's size (a 60 KB map of duplicates took 2 s); keys are checked here,
 * once each, in `convert`.
 */
const PARSE_OPTIONS = { prettyErrors: true, uniqueKeys: false } as const;
/** yaml's own guard for `toJS`: a document whose aliases would expand past this is refused. */
const MAX_ALIAS_COUNT = 100;

function parseDocs(text: string): AnyDoc[] {
  const docs = yaml().parseAllDocuments(text, PARSE_OPTIONS);
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
    const ctx: Ctx = { text, targets: aliasTargets(doc), done: new Map(), errors };
    const root = convert(doc.contents, ctx, 0);
    return { root, prefix: docs.length > 1 ? [i] : [] };
  });
  if (errors.length > 0) return { docs: [], errors, warnings };
  return { docs: out, errors: [], warnings };
}

// Aliases are followed so a token reached through one is found. Each anchored node is
// converted once and shared by every alias of it, so a "billion laughs" file (aliases of
// aliases) costs what its text costs, never its expansion; nothing is left unsearched.
const MAX_DEPTH = 200;

interface Ctx {
  text: string;
  /** Each alias's node: the last node before it with that anchor, as yaml resolves it. */
  targets: Map<unknown, unknown>;
  /** Anchored nodes already converted; `null` while converting (an alias inside its own anchor). */
  done: Map<unknown, PNode | null>;
  errors: string[];
}

/**
 * One walk of the document in yaml's order (a node before its children): yaml's own
 * `Alias.resolve` walks the whole document for every alias, quadratic in the aliases.
 */
function aliasTargets(doc: AnyDoc): Map<unknown, unknown> {
  const last = new Map<string, unknown>();
  const targets = new Map<unknown, unknown>();
  yaml().visit(doc, {
    Node: (_key, node) => {
      if (yaml().isAlias(node)) targets.set(node, last.get(node.source));
      else if (typeof node.anchor === 'string' && node.anchor !== '') last.set(node.anchor, node);
    },
  });
  return targets;
}

function convert(node: unknown, ctx: Ctx, depth: number): PNode {
  if (depth > MAX_DEPTH) return { t: 'other' };
  if (yaml().isAlias(node)) {
    const target = ctx.targets.get(node);
    return target ? convert(target, ctx, depth + 1) : { t: 'other' };
  }
  const anchored = typeof (node as Node | null)?.anchor === 'string';
  if (anchored) {
    const seen = ctx.done.get(node);
    if (seen !== undefined) return seen ?? { t: 'other' };
    ctx.done.set(node, null);
  }
  const result = convertNode(node, ctx, depth);
  if (anchored) ctx.done.set(node, result);
  return result;
}

function convertNode(node: unknown, ctx: Ctx, depth: number): PNode {
  const pos = (node as Node | null)?.range?.[0];
  if (yaml().isMap(node)) {
    const entries = new Map<string, PNode>();
    const keys = new Set<unknown>();
    for (const pair of node.items) {
      if (!yaml().isPair(pair)) continue;
      if (yaml().isScalar(pair.key) || pair.key === null) {
        const k: unknown = pair.key === null ? null : pair.key.value;
        if (keys.has(k)) {
          // As yaml's own uniqueKeys check reports it (clients reading the file refuse it too).
          const at = yaml().isScalar(pair.key) && pair.key.range ? ` at ${lineCol(ctx.text, pair.key.range[0])}` : '';
          ctx.errors.push(`YAML parse error${at}: DUPLICATE_KEY`);
          continue;
        }
        keys.add(k);
      }
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
  const values = docs.map((d) => d.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown);
  return docs.length > 1 ? values : values[0];
}
