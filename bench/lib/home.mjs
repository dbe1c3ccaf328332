// Temp HOMEs with realistic MCP client configs for the benchmarks.
// The eight client files are the first eight of test/helpers/fixtures.ts (copied here
// because test/helpers is not part of the build); the project files are Claude Code
// style `.mcp.json` files under ~/code/p*/, named by `extraConfigs`.
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const GITHUB_TOKEN = 'ghp_UnrelatedGithubSecret0123456789abcdef';

export const CLIENT_FIXTURES = [
  {
    client: 'claude-desktop',
    rel: '.config/Claude/claude_desktop_config.json',
    content: (t) => `{
  "mcpServers": {
    "certorix": {
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": {
        "CERTORIX_API_TOKEN": "${t}"
      }
    },
    "github": {
      "command": "docker",
      "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
      "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}" }
    }
  },
  "globalShortcut": "Ctrl+Space"
}
`,
  },
  {
    client: 'claude-code',
    rel: '.claude.json',
    content: (t) => `{
  "numStartups": 42,
  "autoUpdates": false,
  "tipsHistory": { "ide-hotkey": 3 },
  "mcpServers": {
    "certorix": { "type": "stdio", "command": "npx", "args": ["-y", "@certorix/mcp-server"], "env": { "CERTORIX_API_TOKEN": "${t}" } }
  },
  "projects": {
    "/home/dev/code/app": {
      "allowedTools": [],
      "mcpServers": {
        "certorix-remote": { "type": "http", "url": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Bearer ${t}" } }
      },
      "hasTrustDialogAccepted": true
    },
    "/home/dev/code/other": { "mcpServers": {} }
  }
}`,
  },
  {
    client: 'cursor',
    rel: '.cursor/mcp.json',
    content: (t) =>
      ['{', '    "mcpServers": {', '        "certorix": {', '            "command": "npx",', '            "args": ["-y", "mcp-remote", "https://mcp.certorix.com/sse", "--header", "Authorization:Bearer ' + t + '"]', '        }', '    }', '}', ''].join('\r\n'),
  },
  {
    client: 'vscode',
    rel: '.config/Code/User/mcp.json',
    content: (t) => `// VS Code MCP servers
{
  "inputs": [
    { "type": "promptString", "id": "gh", "description": "GitHub token", "password": true },
  ],
  "servers": {
    /* Certorix, added by hand */
    "certorix": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${t}", }, // trailing comma
    },
    "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer \${input:gh}" } },
  },
}
`,
  },
  {
    client: 'windsurf',
    rel: '.codeium/windsurf/mcp_config.json',
    content: (t) => `{
  "mcpServers": {
    "certorix": {
      "serverUrl": "https://mcp.certorix.com/mcp",
      "headers": { "Authorization": "Bearer ${t}" }
    }
  }
}`,
  },
  {
    client: 'zed',
    rel: '.config/zed/settings.json',
    content: (t) => `// Zed settings
{
  "theme": "One Dark",
  "buffer_font_size": 14,
  "context_servers": {
    "certorix": {
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${t}" }
    }
  }
}
`,
  },
  {
    client: 'gemini',
    rel: '.gemini/settings.json',
    content: (t) => `{
  "theme": "Default",
  "mcpServers": {
    "certorix": { "httpUrl": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Bearer ${t}" }, "timeout": 30000 }
  }
}
`,
  },
  {
    client: 'codex',
    rel: '.codex/config.toml',
    content: (t) => `model = "gpt-5-codex"
approval_policy = "on-request"

# MCP servers
[mcp_servers.certorix]
command = "npx"
args = ["-y", "@certorix/mcp-server"]
env = { "CERTORIX_API_TOKEN" = "${t}" } # rotated by mcp-token-rotator

[mcp_servers.github]
command = "github-mcp"
env = { GITHUB_TOKEN = "${GITHUB_TOKEN}" }
`,
  },
];

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
