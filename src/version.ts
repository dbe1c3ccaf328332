/**
 * Where this package is installed and which version it is, found from this module's own
 * location so it works from src/ (tests), dist/src/ (a checkout's build) and an npm install
 * (global or npx). Only node: built-ins, so `--version` and the status path load nothing else.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP = 'mcp-token-rotator';

let cached: { root: string; version: string } | null | undefined;

function find(): { root: string; version: string } | null {
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === APP) return (cached = { root: dir, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0' });
    } catch {
      // not here; keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) return (cached = null);
    dir = parent;
  }
}

/** The directory holding this package's package.json, or null when it cannot be found (bundled). */
export function packageRootOrNull(): string | null {
  return find()?.root ?? null;
}

/** The package version; "0.0.0" when package.json cannot be found. */
export function packageVersion(): string {
  return find()?.version ?? '0.0.0';
}
