/**
 * Realistic client configs, as users really have them: each with the quirks that a naive
 * rewrite breaks (comments, trailing commas, CRLF, 4-space indent, no final newline,
 * other servers and other secrets beside ours).
 */
/**
 * A GitHub-shaped secret that is nobody's token here: it sits under an unrelated variable
 * of an unrelated server (contract: attribution by entry, never by shape). GitHub entries
 * proper are in test/providers/.
 */
export const GITHUB_TOKEN = 'ghp_UnrelatedGithubSecret0123456789abcdef';

export interface Fixture {
  client: string;
  rel: string;
  content: (token: string) => string;
}

export const FIXTURES: Fixture[] = [
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
    "search": {
      "command": "npx",
      "args": ["-y", "@example/search-mcp"],
      "env": { "SEARCH_API_KEY": "${GITHUB_TOKEN}" }
    }
  },
  "globalShortcut": "Ctrl+Space"
}
`,
  },
  {
    client: 'claude-code',
    rel: '.claude.json',
    content: (t) =>
      `{
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
    // 4-space indent, CRLF line endings
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
  {
    client: 'cline',
    rel: '.cline/data/settings/cline_mcp_settings.json',
    content: (t) => `{
  "mcpServers": {
    "certorix": {
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": { "CERTORIX_API_TOKEN": "${t}" },
      "disabled": false,
      "autoApprove": []
    }
  }
}`,
  },
  {
    client: 'lmstudio',
    rel: '.lmstudio/mcp.json',
    content: (t) => `{
  "mcpServers": {
    "certorix": { "command": "npx", "args": ["-y", "@certorix/mcp-server"], "env": { "CERTORIX_API_TOKEN": "${t}" } }
  }
}
`,
  },
  {
    client: 'continue',
    rel: '.continue/config.yaml',
    content: (t) => `name: Local Assistant
version: 1.0.0
schema: v1
mcpServers:
  - name: certorix
    command: npx
    args:
      - "-y"
      - "@certorix/mcp-server"
    env:
      CERTORIX_API_TOKEN: "${t}"
  - name: other
    command: other-mcp
`,
  },
  {
    client: 'goose',
    rel: '.config/goose/config.yaml',
    content: (t) => `GOOSE_PROVIDER: anthropic
extensions:
  certorix:
    enabled: true
    type: stdio
    name: certorix
    cmd: npx
    args: [-y, "@certorix/mcp-server"]
    envs:
      CERTORIX_API_TOKEN: ${t}
    timeout: 300
`,
  },
  {
    client: 'shell',
    rel: '.bashrc',
    content: (t) => `# ~/.bashrc
[ -z "$PS1" ] && return
alias ll='ls -l'
export GITHUB_TOKEN=${GITHUB_TOKEN}
export CERTORIX_API_TOKEN="${t}"
`,
  },
];
