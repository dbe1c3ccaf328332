import { describe, expect, it } from 'vitest';
import { isCertorixUrl, locateTokens, mcpRemoteUrl, type FileFormat, type SiteKind } from '../../src/clients/formats.js';
import { FIXTURES } from '../helpers/fixtures.js';

const T = 'crtx_4hV9qLm2Xz7Rb1Nw8KpT3sYd';
const T2 = 'crtx_Jc6Ue0Fa5Gi9Ho2Pl7Qm4Rn8';
const GH = 'ghp_UnrelatedGithubSecret0123456789abcdef';

interface Want {
  server: string;
  kind: SiteKind;
  keyPath: (string | number)[];
  /** The raw literal, exactly as it stands in the file. */
  raw: string;
  value: string;
  token: string;
}

/**
 * Everything a caller relies on, with offsets turned into the text they point at: the
 * Certorix sites (these fixtures also hold GitHub tokens, which are GitHub's: see
 * test/providers/attribution.test.ts).
 */
function located(text: string, format: FileFormat) {
  const r = locateTokens(text, format);
  expect(r.errors).toEqual([]);
  return r.sites.filter((s) => s.provider === 'certorix').map((s) => {
    expect(s.token).toBe(s.value.slice(s.tokenStart, s.tokenEnd));
    return { server: s.server, kind: s.kind, keyPath: s.keyPath, raw: text.slice(s.start, s.end), value: s.value, token: s.token };
  });
}

const env = (server: string, keyPath: (string | number)[], raw: string, token = T): Want => ({
  server,
  kind: 'env',
  keyPath,
  raw,
  value: token,
  token,
});

interface Case {
  name: string;
  format: FileFormat;
  text: string;
  want: Want[];
}

const CLAUDE_DESKTOP = `{
  "mcpServers": {
    "certorix": {
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": {
        "CERTORIX_API_TOKEN": "${T}"
      }
    },
    "github": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {
        "GITHUB_PERSONAL_ACCESS_TOKEN": "${GH}"
      }
    }
  }
}
`;

const CLAUDE_CODE = `{
  "numStartups": 137,
  "installMethod": "npm-global",
  "autoUpdates": true,
  "tipsHistory": { "new-user-warmup": 7, "memory-command": 12 },
  "userID": "5f0c2a8e9d",
  "oauthAccount": { "emailAddress": "dev@example.com", "organizationRole": "admin" },
  "mcpServers": {
    "certorix": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${T}" }
    }
  },
  "projects": {
    "/home/dev/code/app": {
      "allowedTools": ["Bash(npm test)"],
      "history": [{ "display": "set CERTORIX_API_TOKEN in the docs", "pastedContents": {} }],
      "mcpContextUris": [],
      "mcpServers": {
        "certorix-remote": {
          "type": "http",
          "url": "https://mcp.certorix.com/mcp",
          "headers": { "Authorization": "Bearer ${T}" }
        }
      },
      "hasTrustDialogAccepted": true
    },
    "/home/dev/code/legacy": {
      "mcpServers": {
        "certorix": { "command": "node", "args": ["/opt/certorix-mcp/index.js"], "env": { "CERTORIX_API_TOKEN": "${T}", "LOG_LEVEL": "debug" } }
      }
    },
    "/home/dev/empty": { "mcpServers": {}, "allowedTools": [] }
  },
  "cachedChangelog": "## 1.0.0\\n- MCP support"
}`;

const CURSOR = `{
    "mcpServers": {
        "certorix": {
            "command": "npx",
            "args": ["-y", "@certorix/mcp-server"],
            "env": {
                "CERTORIX_API_TOKEN": "${T}",
                "GITHUB_TOKEN": "${GH}"
            }
        }
    }
}`;

const VSCODE = `// User-level MCP servers
{
  "inputs": [
    {
      "type": "promptString",
      "id": "certorix-token",
      "description": "Certorix API token",
      "password": true
    },
  ],
  "servers": {
    /* token typed at start-up: a reference, not a site */
    "certorix-prompted": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "\${input:certorix-token}" },
    },
    "certorix-envref": { "command": "npx", "env": { "CERTORIX_API_TOKEN": "\${env:CERTORIX_API_TOKEN}" } },
    // remote server with the token inline
    "certorix": {
      "type": "http",
      "url": "https://mcp.certorix.com/mcp",
      "headers": { "Authorization": "Bearer ${T}", },
    },
    "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer ${GH}" } },
  },
}
`;

const WINDSURF = `{
  "mcpServers": {
    "certorix": {
      "serverUrl": "https://mcp.certorix.com/mcp",
      "headers": {
        "Authorization": "Bearer ${T}"
      }
    }
  }
}
`;

const ZED = `// Zed settings
//
// For information on how to configure Zed, see the Zed documentation.
{
  "theme": { "mode": "system", "light": "One Light", "dark": "One Dark" },
  "ui_font_size": 16,
  /* MCP */
  "context_servers": {
    // old style, before "source": "custom"
    "certorix-legacy": {
      "command": {
        "path": "npx",
        "args": ["-y", "@certorix/mcp-server"],
        "env": { "CERTORIX_API_TOKEN": "${T}" }
      },
      "settings": {}
    },
    "certorix": {
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${T}" },
    },
  },
}
`;

const GEMINI = `{
  "theme": "GitHub",
  "selectedAuthType": "oauth-personal",
  "mcpServers": {
    "certorix": {
      "httpUrl": "https://mcp.certorix.com/mcp",
      "headers": { "authorization": "bearer   ${T}" },
      "timeout": 30000,
      "trust": false
    },
    "github": { "httpUrl": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer ${GH}" } }
  }
}
`;

const CODEX = `model = "gpt-5-codex"
model_reasoning_effort = "high"

[projects."/home/dev/code/app"]
trust_level = "trusted"

[[notify_hooks]]
command = "notify-send"

[[notify_hooks]]
command = 'say'

# Certorix, local server
[mcp_servers.certorix]
command = "npx"
args = ["-y", "@certorix/mcp-server"]
env = { CERTORIX_API_TOKEN = "${T}", LOG_LEVEL = "info" } # rotate every 90 days
startup_timeout_sec = 20

[mcp_servers."certorix staging"]
command = "npx"
args = [
  "-y",
  "@certorix/mcp-server",  # pinned
]

[mcp_servers."certorix staging".env]
CERTORIX_API_URL = 'https://staging.certorix.com'
CERTORIX_API_TOKEN = '${T2}'   # literal string

[mcp_servers.certorix_remote]
url = "https://mcp.certorix.com/mcp"
http_headers = { Authorization = "Bearer ${T}" }

[mcp_servers.certorix_envvar]
url = "https://mcp.certorix.com/mcp"
bearer_token_env_var = "CERTORIX_API_TOKEN"

[mcp_servers.github]
command = "github-mcp-server"
env = { GITHUB_PERSONAL_ACCESS_TOKEN = "${GH}" }
`;

const CLINE = `{
  "mcpServers": {
    "certorix": {
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": {
        "CERTORIX_API_TOKEN": "${T}"
      },
      "disabled": false,
      "autoApprove": ["list_trees", "get_tree"]
    },
    "certorix-remote": {
      "type": "streamableHttp",
      "url": "https://mcp.certorix.com/mcp",
      "headers": { "Authorization": "Bearer ${T}" },
      "disabled": true,
      "autoApprove": []
    }
  }
}`;

const LMSTUDIO = `{
  "mcpServers": {
    "certorix": {
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${T}" }
    }
  }
}
`;

const CONTINUE = `name: My Assistant
version: 1.0.0
schema: v1
models:
  - name: Claude
    provider: anthropic
    model: claude-sonnet-4
    apiKey: \${{ secrets.ANTHROPIC_API_KEY }}
mcpServers:
  - name: Certorix
    type: stdio
    command: npx
    args:
      - "-y"
      - "@certorix/mcp-server"
    env:
      CERTORIX_API_TOKEN: ${T}
      GITHUB_TOKEN: ${GH}
  - name: Certorix remote
    type: streamable-http
    url: https://mcp.certorix.com/mcp
    requestOptions:
      headers:
        Authorization: "Bearer ${T}"
  - name: Certorix from secrets
    command: npx
    env:
      CERTORIX_API_TOKEN: \${{ secrets.CERTORIX }}
`;

const GOOSE = `GOOSE_PROVIDER: anthropic
GOOSE_MODEL: claude-sonnet-4
extensions:
  developer:
    enabled: true
    type: builtin
    name: developer
    timeout: 300
  certorix:
    enabled: true
    type: stdio
    name: certorix
    cmd: npx
    args: [-y, '@certorix/mcp-server']
    envs: { CERTORIX_API_TOKEN: '${T}' }
    env_keys: []
    timeout: 300
  certorix-remote:
    enabled: true
    type: streamable_http
    name: certorix-remote
    uri: https://mcp.certorix.com/mcp
    headers:
      Authorization: Bearer ${T}
    envs: {}
`;

const MCP_REMOTE = `{
    "mcpServers": {
        "certorix-a": {
            "command": "npx",
            "args": ["-y", "mcp-remote", "https://mcp.certorix.com/sse", "--header", "Authorization: Bearer ${T}"]
        },
        "certorix-b": {
            "command": "npx",
            "args": ["mcp-remote@latest", "https://mcp.certorix.com/mcp", "--header", "Authorization:Bearer ${T}"]
        },
        "certorix-c": {
            "command": "npx",
            "args": ["-y", "mcp-remote", "https://eu.mcp.certorix.com/mcp", "--header=Authorization: Bearer ${T}"]
        },
        "certorix-d": {
            "command": "npx",
            "args": ["-y", "mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization:\${AUTH_HEADER}"],
            "env": { "AUTH_HEADER": "Bearer ${T}" }
        },
        "certorix-e": {
            "command": "npx",
            "args": ["-y", "mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization: Bearer \${CERTORIX_KEY}"],
            "env": { "CERTORIX_KEY": "${T2}" }
        },
        "elsewhere": {
            "command": "npx",
            "args": ["-y", "mcp-remote", "https://mcp.example.com/sse", "--header", "Authorization: Bearer ${T2}"]
        },
        "not-a-bridge": { "command": "curl", "args": ["https://mcp.certorix.com/mcp", "-H", "Authorization: Bearer ${T2}"] }
    }
}
`;

// Hosts that only look like Certorix, and a bearer header with no URL at all.
const LOOKALIKES = `{
  "mcpServers": {
    "a": { "url": "https://certorix.com.evil.example/mcp", "headers": { "Authorization": "Bearer ${T}" } },
    "b": { "url": "https://notcertorix.com/mcp", "headers": { "Authorization": "Bearer ${T}" } },
    "c": { "headers": { "Authorization": "Bearer ${T}" } },
    "d": { "url": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Basic ${T}", "X-Api-Key": "${T}" } },
    "e": { "url": "https://certorix.com/mcp", "headers": { "AUTHORIZATION": "Bearer ${T2}" } },
    "f": { "env": { "CERTORIX_API_TOKEN": "   " } },
    "g": { "env": { "CERTORIX_API_TOKEN": 12345, "certorix_api_token": "${T}" } }
  }
}`;

const BASHRC = `# ~/.bashrc: executed by bash(1) for non-login shells.
case $- in *i*) ;; *) return;; esac
export PATH="$HOME/.local/bin:$PATH"
export GITHUB_TOKEN=${GH}
# export CERTORIX_API_TOKEN=${T2}
export CERTORIX_API_TOKEN="${T}"
export CERTORIX_API_TOKEN="$(pass show certorix/token)"
export CERTORIX_API_TOKEN=$CERTORIX_PROD
`;

const ZSHRC = `export ZSH="$HOME/.oh-my-zsh"
plugins=(git)
  export CERTORIX_API_TOKEN='${T}'  # rotated by mcp-token-rotator
source $ZSH/oh-my-zsh.sh
typeset -x CERTORIX_API_TOKEN=${T}
`;

const PROFILE = `# ~/.profile
CERTORIX_API_TOKEN=${T}; export CERTORIX_API_TOKEN
declare -x CERTORIX_API_TOKEN="${T2}"
unset CERTORIX_API_TOKEN
`;

const FISH = `if status is-interactive
    # Commands to run in interactive sessions can go here
end
set -gx PATH $HOME/.local/bin $PATH
set -gx CERTORIX_API_TOKEN ${T}
set -Ux CERTORIX_API_TOKEN '${T}'
set --export --global CERTORIX_API_TOKEN "${T}"
set -x CERTORIX_API_TOKEN (security find-generic-password -s certorix -w)
set -e CERTORIX_API_TOKEN
# set -gx CERTORIX_API_TOKEN ${T2}
`;

const DOTENV = `# Local development
NODE_ENV=development
CERTORIX_API_URL=https://api.certorix.com
CERTORIX_API_TOKEN = ${T}   # dev token
export CERTORIX_API_TOKEN="${T}"
CERTORIX_API_TOKEN='${T2}'
CERTORIX_API_TOKEN=\${PROD_TOKEN}
GITHUB_TOKEN=${GH}
`;

const CASES: Case[] = [
  {
    name: 'Claude Desktop (strict JSON, 2-space)',
    format: 'json',
    text: CLAUDE_DESKTOP,
    want: [env('certorix', ['mcpServers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`)],
  },
  {
    name: 'Claude Code .claude.json (top level and projects)',
    format: 'json',
    text: CLAUDE_CODE,
    want: [
      env('certorix', ['mcpServers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
      {
        server: 'certorix-remote',
        kind: 'header',
        keyPath: ['projects', '/home/dev/code/app', 'mcpServers', 'certorix-remote', 'headers', 'Authorization'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
      env('certorix', ['projects', '/home/dev/code/legacy', 'mcpServers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
    ],
  },
  {
    name: 'Cursor (4-space, a GitHub token beside)',
    format: 'json',
    text: CURSOR,
    want: [env('certorix', ['mcpServers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`)],
  },
  {
    name: 'VS Code mcp.json (comments, trailing commas, ${input:} references)',
    format: 'jsonc',
    text: VSCODE,
    want: [
      {
        server: 'certorix',
        kind: 'header',
        keyPath: ['servers', 'certorix', 'headers', 'Authorization'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'Windsurf (serverUrl)',
    format: 'json',
    text: WINDSURF,
    want: [
      {
        server: 'certorix',
        kind: 'header',
        keyPath: ['mcpServers', 'certorix', 'headers', 'Authorization'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'Zed settings.json (old command.env and new style)',
    format: 'jsonc',
    text: ZED,
    want: [
      env('certorix-legacy', ['context_servers', 'certorix-legacy', 'command', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
      env('certorix', ['context_servers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
    ],
  },
  {
    name: 'Gemini (httpUrl, lower-case header and scheme)',
    format: 'json',
    text: GEMINI,
    want: [
      {
        server: 'certorix',
        kind: 'header',
        keyPath: ['mcpServers', 'certorix', 'headers', 'authorization'],
        raw: `"bearer   ${T}"`,
        value: `bearer   ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'Codex config.toml (inline env, sub-table env, literal string, http_headers)',
    format: 'toml',
    text: CODEX,
    want: [
      env('certorix', ['mcp_servers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
      env('certorix staging', ['mcp_servers', 'certorix staging', 'env', 'CERTORIX_API_TOKEN'], `'${T2}'`, T2),
      {
        server: 'certorix_remote',
        kind: 'header',
        keyPath: ['mcp_servers', 'certorix_remote', 'http_headers', 'Authorization'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'Cline (env and streamableHttp headers)',
    format: 'json',
    text: CLINE,
    want: [
      env('certorix', ['mcpServers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
      {
        server: 'certorix-remote',
        kind: 'header',
        keyPath: ['mcpServers', 'certorix-remote', 'headers', 'Authorization'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'LM Studio',
    format: 'json',
    text: LMSTUDIO,
    want: [env('certorix', ['mcpServers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`)],
  },
  {
    name: 'Continue config.yaml (list form, ${{ secrets }} reference)',
    format: 'yaml',
    text: CONTINUE,
    want: [
      env('Certorix', ['mcpServers', 0, 'env', 'CERTORIX_API_TOKEN'], T),
      {
        server: 'Certorix remote',
        kind: 'header',
        keyPath: ['mcpServers', 1, 'requestOptions', 'headers', 'Authorization'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'Goose config.yaml (envs in a flow map, plain header)',
    format: 'yaml',
    text: GOOSE,
    want: [
      env('certorix', ['extensions', 'certorix', 'envs', 'CERTORIX_API_TOKEN'], `'${T}'`),
      {
        server: 'certorix-remote',
        kind: 'header',
        keyPath: ['extensions', 'certorix-remote', 'headers', 'Authorization'],
        raw: `Bearer ${T}`,
        value: `Bearer ${T}`,
        token: T,
      },
    ],
  },
  {
    name: 'mcp-remote args in three spellings and the ${VAR} env pattern',
    format: 'json',
    text: MCP_REMOTE,
    want: [
      {
        server: 'certorix-a',
        kind: 'args',
        keyPath: ['mcpServers', 'certorix-a', 'args', 4],
        raw: `"Authorization: Bearer ${T}"`,
        value: `Authorization: Bearer ${T}`,
        token: T,
      },
      {
        server: 'certorix-b',
        kind: 'args',
        keyPath: ['mcpServers', 'certorix-b', 'args', 3],
        raw: `"Authorization:Bearer ${T}"`,
        value: `Authorization:Bearer ${T}`,
        token: T,
      },
      {
        server: 'certorix-c',
        kind: 'args',
        keyPath: ['mcpServers', 'certorix-c', 'args', 3],
        raw: `"--header=Authorization: Bearer ${T}"`,
        value: `--header=Authorization: Bearer ${T}`,
        token: T,
      },
      {
        server: 'certorix-d',
        kind: 'header',
        keyPath: ['mcpServers', 'certorix-d', 'env', 'AUTH_HEADER'],
        raw: `"Bearer ${T}"`,
        value: `Bearer ${T}`,
        token: T,
      },
      {
        server: 'certorix-e',
        kind: 'header',
        keyPath: ['mcpServers', 'certorix-e', 'env', 'CERTORIX_KEY'],
        raw: `"${T2}"`,
        value: T2,
        token: T2,
      },
    ],
  },
  {
    name: 'look-alike hosts, no URL, other schemes, blank and non-string values',
    format: 'json',
    text: LOOKALIKES,
    want: [
      {
        server: 'e',
        kind: 'header',
        keyPath: ['mcpServers', 'e', 'headers', 'AUTHORIZATION'],
        raw: `"Bearer ${T2}"`,
        value: `Bearer ${T2}`,
        token: T2,
      },
    ],
  },
];

const line = (n: number, raw: string, token = T): Want => ({
  server: '',
  kind: 'shell',
  keyPath: ['CERTORIX_API_TOKEN', n],
  raw,
  value: token,
  token,
});

const SHELL_CASES: Case[] = [
  { name: '.bashrc (export, commented-out, $(...) and $VAR references)', format: 'shell', text: BASHRC, want: [line(5, `"${T}"`)] },
  { name: '.zshrc (single quotes, trailing comment, typeset -x)', format: 'shell', text: ZSHRC, want: [line(2, `'${T}'`), line(4, T)] },
  { name: '.profile (bare then ;, declare -x, unset)', format: 'shell', text: PROFILE, want: [line(1, T), line(2, `"${T2}"`, T2)] },
  {
    name: 'config.fish (-gx, -Ux, --export --global; command substitution, erase, comment)',
    format: 'fish',
    text: FISH,
    want: [line(4, T), line(5, `'${T}'`), line(6, `"${T}"`)],
  },
  {
    name: '.env (spaces around =, export, quotes, ${VAR})',
    format: 'dotenv',
    text: DOTENV,
    want: [line(3, T), line(4, `"${T}"`), line(5, `'${T2}'`, T2)],
  },
];

describe('locateTokens: client configs', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(located(c.text, c.format)).toEqual(c.want);
    if (c.text !== LOOKALIKES) expect(locateTokens(c.text, c.format).warnings).toEqual([]);
  });

  it('never reports a GitHub token as Certorix\'s, nor any other secret', () => {
    for (const c of [...CASES, ...SHELL_CASES]) {
      for (const s of locateTokens(c.text, c.format).sites) {
        if (s.token === GH) expect(s.provider).toBe('github');
        else expect([T, T2]).toContain(s.token);
      }
    }
  });
});

describe('locateTokens: shell, fish and dotenv files', () => {
  it.each(SHELL_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(located(c.text, c.format)).toEqual(c.want);
    expect(locateTokens(c.text, c.format).warnings).toEqual([]);
  });

  it.each([
    ['export CERTORIX_API_TOKEN=abc;', 'abc', 'abc'],
    ['export CERTORIX_API_TOKEN="a b"  # two words', '"a b"', 'a b'],
    ["CERTORIX_API_TOKEN='it'\\''s'", "'it'\\''s'", "it's"],
    ['CERTORIX_API_TOKEN="q\\"\\$x\\\\"', '"q\\"\\$x\\\\"', 'q"$x\\'],
    ['CERTORIX_API_TOKEN=a\\ b', 'a\\ b', 'a b'],
    ['    declare -gx CERTORIX_API_TOKEN=abc', 'abc', 'abc'],
  ])('sh: %s', (text, raw, value) => {
    expect(located(text, 'shell')).toEqual([{ server: '', kind: 'shell', keyPath: ['CERTORIX_API_TOKEN', 0], raw, value, token: value }]);
  });

  it.each([
    ["set -gx CERTORIX_API_TOKEN 'it\\'s'", "'it\\'s'", "it's"],
    ['set -gx CERTORIX_API_TOKEN "a\\$b"', '"a\\$b"', 'a$b'],
    ['export CERTORIX_API_TOKEN=abc', 'abc', 'abc'],
  ])('fish: %s', (text, raw, value) => {
    expect(located(text, 'fish')).toEqual([{ server: '', kind: 'shell', keyPath: ['CERTORIX_API_TOKEN', 0], raw, value, token: value }]);
  });

  it.each([
    ['CERTORIX_API_TOKEN=abc#not-a-comment', 'abc#not-a-comment', 'abc#not-a-comment'],
    ['CERTORIX_API_TOKEN="a\\"b" # c', '"a\\"b"', 'a"b'],
    ['CERTORIX_API_TOKEN=`abc`', '`abc`', 'abc'],
  ])('dotenv: %s', (text, raw, value) => {
    expect(located(text, 'dotenv')).toEqual([{ server: '', kind: 'shell', keyPath: ['CERTORIX_API_TOKEN', 0], raw, value, token: value }]);
  });

  it.each([
    ['shell', 'export CERTORIX_API_TOKEN="zzz\nzzz"'],
    ['shell', '[ -n "$X" ] && export CERTORIX_API_TOKEN=zzz'],
    ['shell', "export CERTORIX_API_TOKEN=$'zzz'"],
    ['fish', 'set -gx CERTORIX_API_TOKEN "zzz'],
    ['fish', 'if true; set -gx CERTORIX_API_TOKEN zzz; end'],
    ['dotenv', 'CERTORIX_API_TOKEN="zzz\nzzz"'],
  ] as const)('%s: a form it cannot read is warned about, by line, without content: %j', (format, text) => {
    const r = locateTokens(text, format);
    expect(r.sites).toEqual([]);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^line 1: /);
    expect(r.warnings[0]).not.toContain('zzz');
  });

  it('reports offsets in a CRLF file with a BOM', () => {
    const text = `\uFEFFexport A=1\r\nexport CERTORIX_API_TOKEN='${T}'\r\n`;
    expect(located(text, 'shell')).toEqual([line(1, `'${T}'`)]);
  });
});

describe('locateTokens: layout quirks', () => {
  const jsonBody = ['{', '    "mcpServers": {', '        "certorix": { "env": { "CERTORIX_API_TOKEN": "' + T + '" } }', '    }', '}'];

  it.each([
    ['CRLF, 4-space indent, no final newline', jsonBody.join('\r\n')],
    ['BOM', `\uFEFF${jsonBody.join('\n')}\n`],
    ['BOM and CRLF', `\uFEFF${jsonBody.join('\r\n')}`],
  ])('JSON: %s', (_name, text) => {
    const [site] = locateTokens(text, 'json').sites;
    expect(site).toBeDefined();
    expect(text.slice(site?.start, site?.end)).toBe(`"${T}"`);
    expect(site?.token).toBe(T);
  });

  it('YAML with CRLF and a BOM', () => {
    const text = `\uFEFFextensions:\r\n  certorix:\r\n    envs:\r\n      CERTORIX_API_TOKEN: "${T}"\r\n`;
    expect(located(text, 'yaml')).toEqual([env('certorix', ['extensions', 'certorix', 'envs', 'CERTORIX_API_TOKEN'], `"${T}"`)]);
  });

  it('YAML: every document of a stream, paths led by the document index', () => {
    const text = `extensions: {}\n---\nextensions:\n  certorix:\n    envs:\n      CERTORIX_API_TOKEN: ${T}\n`;
    expect(located(text, 'yaml')).toEqual([env('certorix', [1, 'extensions', 'certorix', 'envs', 'CERTORIX_API_TOKEN'], T)]);
  });

  it('YAML block scalar and anchor/alias', () => {
    const text = `base: &tok "${T}"\nextensions:\n  a:\n    envs:\n      CERTORIX_API_TOKEN: *tok\n  b:\n    envs:\n      CERTORIX_API_TOKEN: |-\n        ${T2}\n`;
    expect(located(text, 'yaml')).toEqual([
      env('a', ['extensions', 'a', 'envs', 'CERTORIX_API_TOKEN'], `"${T}"`),
      env('b', ['extensions', 'b', 'envs', 'CERTORIX_API_TOKEN'], `|-\n        ${T2}\n`, T2),
    ]);
  });

  it('YAML: an alias bomb is bounded: each anchor converted once, nothing left unsearched', () => {
    const levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
    for (let i = 1; i < 9; i++) levels.push(`${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(10).fill(`*${'abcdefghi'[i - 1]}`).join(', ')}]`);
    const text = `${levels.join('\n')}\nextensions:\n  c: { envs: { CERTORIX_API_TOKEN: ${T} } }\n`;
    const started = Date.now();
    const r = locateTokens(text, 'yaml');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r.sites.map((s) => s.token)).toEqual([T]);
    expect(r.warnings).toEqual([]);
  });

  it('TOML with CRLF, dotted keys, a multi-line string and a sub-table', () => {
    const text = [
      '[mcp_servers.a]',
      `env.CERTORIX_API_TOKEN = "${T}"`,
      '[mcp_servers.b]',
      `env = { CERTORIX_API_TOKEN = """`,
      `${T2}""" }`,
      '[mcp_servers.c.env]',
      `  "CERTORIX_API_TOKEN"   =   "\\u0063rtx"  `,
      '',
    ].join('\r\n');
    expect(located(text, 'toml')).toEqual([
      env('a', ['mcp_servers', 'a', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`),
      env('b', ['mcp_servers', 'b', 'env', 'CERTORIX_API_TOKEN'], `"""\r\n${T2}"""`, T2),
      env('c', ['mcp_servers', 'c', 'env', 'CERTORIX_API_TOKEN'], '"\\u0063rtx"', 'crtx'),
    ]);
  });

  it('VS Code settings.json variant: mcp.servers', () => {
    const text = `{\n  "editor.fontSize": 14,\n  "mcp": { "servers": { "certorix": { "env": { "CERTORIX_API_TOKEN": "${T}" } } } }\n}\n`;
    expect(located(text, 'jsonc')).toEqual([env('certorix', ['mcp', 'servers', 'certorix', 'env', 'CERTORIX_API_TOKEN'], `"${T}"`)]);
  });

  it('a value with spaces around the token: the token is the trimmed part', () => {
    const text = `{"mcpServers":{"c":{"env":{"CERTORIX_API_TOKEN":" ${T} "}}}}`;
    const [s] = locateTokens(text, 'json').sites;
    expect(s?.value).toBe(` ${T} `);
    expect([s?.tokenStart, s?.tokenEnd, s?.token]).toEqual([1, 1 + T.length, T]);
  });

  it('duplicate JSON keys: the last one counts (as JSON.parse) and a warning says where', () => {
    const text = `{"mcpServers":{"c":{"env":{"CERTORIX_API_TOKEN":"${T2}","CERTORIX_API_TOKEN":"${T}"}}}}`;
    const r = locateTokens(text, 'json');
    expect(r.sites.map((s) => s.token)).toEqual([T]);
    expect(r.warnings).toEqual(['duplicate key at 1:81; the last one wins']);
  });

  it.each(['json', 'jsonc', 'toml', 'yaml', 'shell', 'fish', 'dotenv'] as const)('%s: an empty file is neither an error nor a site', (format) => {
    expect(locateTokens('', format)).toEqual({ sites: [], errors: [], warnings: [] });
  });

  it('a non-string CERTORIX_API_TOKEN is warned about with its position', () => {
    expect(locateTokens(LOOKALIKES, 'json').warnings).toEqual(['CERTORIX_API_TOKEN value at 9:43 is not a string; left alone']);
  });
});

describe('locateTokens: parse errors', () => {
  it.each([
    ['json', `{\n  "mcpServers": {\n    "certorix": { "env": { "CERTORIX_API_TOKEN": "${T}" } }\n`, /^JSON parse error at 4:1: /],
    ['jsonc', `{\n  "mcpServers": { "certorix": { "env": { "CERTORIX_API_TOKEN": "${T}" ] } }\n}\n`, /^JSON parse error at 2:\d+: /],
    ['toml', `[mcp_servers.certorix]\nenv = { CERTORIX_API_TOKEN = "${T} }\n`, /^TOML parse error at 2:\d+: /],
    ['toml', `[mcp_servers.certorix]\nenv.CERTORIX_API_TOKEN = "${T}"\nenv.CERTORIX_API_TOKEN = "${T}"\n`, /^TOML parse error at 3:\d+: /],
    ['yaml', `extensions:\n  certorix:\n    envs:\n      CERTORIX_API_TOKEN: "${T}"\n     bad: [\n`, /^YAML parse error at \d+:\d+: [A-Z_]+$/],
  ] as const)('%s: line:column, no content, no sites', (format, text, pattern) => {
    const r = locateTokens(text, format);
    expect(r.sites).toEqual([]);
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors[0]).toMatch(pattern);
    for (const e of r.errors) expect(e).not.toMatch(/crtx|certorix|CERTORIX|mcp_servers|envs/);
  });
});

describe('isCertorixUrl', () => {
  it.each([
    ['https://mcp.certorix.com/mcp', true],
    ['https://certorix.com', true],
    ['HTTPS://EU.MCP.CERTORIX.COM:8443/sse', true],
    ['http://certorix.com./mcp', true],
    ['https://certorix.com.evil.example', false],
    ['https://notcertorix.com', false],
    ['https://evil.example/?u=https://certorix.com', false],
    ['wss://mcp.certorix.com', false],
    ['mcp.certorix.com', false],
    ['https://${env:HOST}', false],
  ] as const)('%s -> %s', (url, ok) => {
    expect(isCertorixUrl(url)).toBe(ok);
  });
});

describe('the shared test fixtures (test/helpers/fixtures.ts)', () => {
  const formatOf = (rel: string): FileFormat =>
    rel.endsWith('.toml') ? 'toml' : rel.endsWith('.yaml') ? 'yaml' : rel.endsWith('.json') ? 'jsonc' : 'shell';
  it.each(FIXTURES.map((f) => [f.client, f] as const))('%s: the token is found', (_client, f) => {
    const sites = locateTokens(f.content(T), formatOf(f.rel)).sites.filter((s) => s.provider === 'certorix');
    expect(sites.length).toBeGreaterThan(0);
    expect(sites.every((s) => s.token === T)).toBe(true);
  });
});

// Issue 15, item 12: an mcp-remote bridge is Certorix's only when the URL it connects to is.
describe('mcp-remote: only the URL the bridge connects to counts', () => {
  it.each<[string, string | null, Array<string | null>, string | null]>([
    ['npx -y mcp-remote URL', 'npx', ['-y', 'mcp-remote', 'https://mcp.certorix.com/sse', '--header', 'Authorization: Bearer x'], 'https://mcp.certorix.com/sse'],
    ['a pinned version', 'npx', ['mcp-remote@0.1.29', 'https://eu.mcp.certorix.com/mcp'], 'https://eu.mcp.certorix.com/mcp'],
    ['npx -p mcp-remote mcp-remote URL', 'npx', ['-p', 'mcp-remote@latest', 'mcp-remote', 'https://mcp.certorix.com/mcp'], 'https://mcp.certorix.com/mcp'],
    ['--header pairs before the URL', 'npx', ['mcp-remote', '--header', 'Authorization: Bearer x', 'https://mcp.certorix.com/mcp'], 'https://mcp.certorix.com/mcp'],
    ['the command is mcp-remote', '/usr/local/bin/mcp-remote', ['https://mcp.certorix.com/mcp', '--header', 'Authorization: Bearer x'], 'https://mcp.certorix.com/mcp'],
    ['a script path in node_modules', 'node', ['/opt/x/node_modules/mcp-remote/dist/proxy.js', 'https://mcp.certorix.com/mcp'], 'https://mcp.certorix.com/mcp'],
    ['a bridge to another host, a Certorix URL as a later value', 'npx', ['mcp-remote', 'https://evil.example/mcp', '--header', 'Authorization: Bearer x', '--resource', 'https://mcp.certorix.com/mcp'], 'https://evil.example/mcp'],
    ['no mcp-remote at all', 'curl', ['https://mcp.certorix.com/mcp'], null],
    ['mcp-remote only inside a URL', 'npx', ['some-proxy', 'https://evil.example/mcp-remote'], null],
  ])('%s', (_n, command, args, want) => {
    expect(mcpRemoteUrl(command, args)).toBe(want);
  });

  it('a bridge to evil.example with a Certorix URL elsewhere in argv holds no Certorix token', () => {
    const text = `{ "mcpServers": {
      "trap": { "command": "npx", "args": ["-y", "mcp-remote", "https://evil.example/mcp", "--header", "Authorization: Bearer ${T}", "--resource", "https://mcp.certorix.com/mcp"] },
      "real": { "command": "npx", "args": ["-y", "mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization: Bearer ${T2}"] }
    } }`;
    const r = locateTokens(text, 'json');
    expect(r.sites.map((s) => s.server)).toEqual(['real']);
  });
});
