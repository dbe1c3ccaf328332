// Temp HOMEs with realistic MCP client configs for the benchmarks.
// The eight client files are the first eight of test/helpers/fixtures.ts; the project
// files are Claude Code style `.mcp.json` files under ~/code/p*/, named by `extraConfigs`.
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

// The first eight client configs of the test fixtures (built into dist/ for this).
const fixtures = await import(new URL('../../dist/test/helpers/fixtures.js', import.meta.url));
export const GITHUB_TOKEN = fixtures.GITHUB_TOKEN;
export const CLIENT_FIXTURES = fixtures.FIXTURES.slice(0, 8);

/** A project-level Claude Code `.mcp.json`, as committed-but-ignored in a repo. */
export function projectConfig(t, i) {
  return `{
  "mcpServers": {
    "certorix": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${t}", "CERTORIX_PROJECT": "p${i}" }
    },
    "filesystem": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."] }
  }
}
`;
}

export const PROJECT_GLOB = '~/code/*/.mcp.json';

export function projectRel(i) {
  return `code/p${String(i).padStart(4, '0')}/.mcp.json`;
}

/**
 * Makes a throw-away HOME holding `token` in the eight client files (when `clients`) and in
 * `projects` project files, with settings naming the project glob.
 * `otherToken`, when given, sits in the first project file instead (a second tracked token).
 */
export async function makeHome({ token, projects = 0, clients = true, apiUrl, otherToken, settings = {} } = {}) {
  const base = process.env.BENCH_TMPDIR || tmpdir();
  const home = await mkdtemp(path.join(base, 'mtr-bench-'));
  const files = [];
  const put = async (rel, content) => {
    const p = path.join(home, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, content);
    files.push({ path: p, bytes: Buffer.byteLength(content) });
    return p;
  };
  if (clients) for (const f of CLIENT_FIXTURES) await put(f.rel, f.content(token));
  for (let i = 0; i < projects; i++) await put(projectRel(i), projectConfig(i === 0 && otherToken ? otherToken : token, i));
  const s = {
    // Fast retries: the benchmark injects no faults, but a stray one must not sleep for seconds.
    retry: { attempts: 3, baseMs: 5, maxMs: 50 },
    requestTimeoutMs: 5000,
    notify: false,
    ...(projects > 0 ? { extraConfigs: [PROJECT_GLOB] } : {}),
    ...settings,
  };
  await put('.config/mcp-token-rotator/config.json', JSON.stringify(s, null, 2));
  files.pop(); // the settings file is not a config to rewrite
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    ...(apiUrl ? { CERTORIX_API_URL: apiUrl } : {}),
  };
  return {
    home,
    env,
    files,
    stateDir: path.join(home, '.local/state/mcp-token-rotator'),
    db: path.join(home, '.local/state/mcp-token-rotator/rotator.db'),
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}
