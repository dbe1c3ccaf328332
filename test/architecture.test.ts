/**
 * The direction of dependencies between the subsystems of src/, read from the sources with
 * a regex (static, type-only, re-export and dynamic imports alike: a type import is still
 * a dependency, and a dynamic one only defers it).
 * - The rotation engine defines what it needs from broker mode (src/rotation/port.ts) and
 *   never imports src/broker/: broker mode depends on the engine, not the other way round.
 * - No import cycle crosses folders: files that reach each other through imports live in
 *   the same subsystem (the first folder under src/; files directly in src/ count as one).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');

/** Relative specifiers of every import, export-from and import() in a TypeScript source. */
function importSpecifiers(text: string): string[] {
  const out: string[] = [];
  const re = /\b(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2]) as string);
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The import graph of the files under `root`, by path relative to it ('rotation/run.ts'). */
function importGraph(root: string): Map<string, string[]> {
  const files = sourceFiles(root);
  const known = new Set(files);
  const g = new Map<string, string[]>();
  for (const f of files) {
    const deps = importSpecifiers(readFileSync(f, 'utf8'))
      .map((s) => path.resolve(path.dirname(f), s).replace(/\.js$/, '.ts'))
      .filter((p) => known.has(p))
      .map((p) => path.relative(root, p).split(path.sep).join('/'));
    g.set(path.relative(root, f).split(path.sep).join('/'), [...new Set(deps)]);
  }
  return g;
}

/** Strongly connected components with more than one file (Tarjan), each sorted. */
function importCycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The subsystem of a file: its first folder under src/, or '.' for files directly in src/. */
const subsystem = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '.');

describe('the import graph (its own checks)', () => {
  it('reads every import form, relative ones only', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      "import x, { y } from './x.js';",
      "import * as ns from './ns.js';",
      "import './side.js';",
      "export { c } from './c.js';",
      "export * from './star.js';",
      "const { d } = await import('../d.js');",
      "import { z } from 'zod';",
      'import {\n  e,\n  type F,\n} from "./multi.js";',
    ].join('\n');
    expect(importSpecifiers(text).sort()).toEqual(['../b/b.js', '../d.js', './a.js', './c.js', './multi.js', './ns.js', './side.js', './star.js', './x.js'].sort());
  });

  it('finds a cycle and only the files in it', () => {
    const g = new Map([
      ['rotation/run.ts', ['broker/locations.ts', 'scan.ts']],
      ['broker/locations.ts', ['broker/common.ts']],
      ['broker/common.ts', ['rotation/rewrite.ts', 'rotation/run.ts']],
      ['rotation/rewrite.ts', []],
      ['scan.ts', []],
    ]);
    expect(importCycles(g)).toEqual([['broker/common.ts', 'broker/locations.ts', 'rotation/run.ts']]);
  });
});

describe('dependency direction in src/', () => {
  const graph = importGraph(SRC);

  it('sees the sources', () => {
    expect(graph.get('rotation/run.ts')).toContain('rotation/port.ts');
    expect(graph.size).toBeGreaterThan(50);
  });

  it('the rotation engine never imports src/broker/ (broker mode implements rotation/port.ts)', () => {
    const offending = [...graph].flatMap(([f, deps]) => (f.startsWith('rotation/') ? deps.filter((d) => d.startsWith('broker/')).map((d) => `${f} -> ${d}`) : []));
    expect(offending).toEqual([]);
  });

  it('no import cycle crosses subsystem folders', () => {
    const crossing = importCycles(graph).filter((c) => new Set(c.map(subsystem)).size > 1);
    expect(crossing).toEqual([]);
  });
});
