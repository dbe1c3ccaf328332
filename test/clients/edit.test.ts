import { execFileSync } from 'node:child_process';
import { parse as parseJsonc } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { EditError, replaceToken } from '../../src/clients/edit.js';
import { locateTokens, type FileFormat } from '../../src/clients/formats.js';
import { FIXTURES } from '../helpers/fixtures.js';

const T = 'crtx_4hV9qLm2Xz7Rb1Nw8KpT3sYd';
const T2 = 'crtx_Jc6Ue0Fa5Gi9Ho2Pl7Qm4Rn8';
const N = 'crtx_NEWk3Jd8Fq1Zs6Wm0Lp5Xc9Vb';
const GH = 'ghp_UnrelatedGithubSecret0123456789abcdef';

/** A client config as a function of the tokens in it; the expected output is the same function of the new token. */
interface Client {
  name: string;
  format: FileFormat;
  text: (t: string, t2: string) => string;
  /** Sites holding the first token. */
  sites: number;
}

const CLIENTS: Client[] = [
  {
    name: 'Claude Desktop',
    format: 'json',
    sites: 1,
    text: (t) => `{
  "mcpServers": {
    "certorix": {
      "command": "npx",
      "args": ["-y", "@certorix/mcp-server"],
      "env": {
        "CERTORIX_API_TOKEN": "${t}"
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
`,
  },
  {
    name: 'Claude Code .claude.json',
    format: 'json',
    sites: 3,
    text: (t) => `{
  "numStartups": 137,
  "tipsHistory": { "new-user-warmup": 7 },
  "oauthAccount": { "emailAddress": "dev@example.com" },
  "mcpServers": {
    "certorix": { "type": "stdio", "command": "npx", "args": ["-y", "@certorix/mcp-server"], "env": { "CERTORIX_API_TOKEN": "${t}" } }
  },
  "projects": {
    "/home/dev/code/app": {
      "allowedTools": ["Bash(npm test)"],
      "history": [{ "display": "rotate the certorix token", "pastedContents": {} }],
      "mcpServers": {
        "certorix-remote": { "type": "http", "url": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Bearer ${t}" } }
      },
      "hasTrustDialogAccepted": true
    },
    "/home/dev/code/legacy": {
      "mcpServers": { "certorix": { "command": "node", "env": { "CERTORIX_API_TOKEN": "${t}", "LOG_LEVEL": "debug" } } }
    }
  }
}`,
  },
  {
    name: 'Cursor (4-space, CRLF, no final newline, GitHub token beside)',
    format: 'json',
    sites: 1,
    text: (t) =>
      [
        '{',
        '    "mcpServers": {',
        '        "certorix": {',
        '            "command": "npx",',
        '            "args": ["-y", "@certorix/mcp-server"],',
        `            "env": { "CERTORIX_API_TOKEN": "${t}", "GITHUB_TOKEN": "${GH}" }`,
        '        }',
        '    }',
        '}',
      ].join('\r\n'),
  },
  {
    name: 'VS Code mcp.json (comments, trailing commas, inputs, ${input:})',
    format: 'jsonc',
    sites: 1,
    text: (t) => `// User-level MCP servers
{
  "inputs": [
    { "type": "promptString", "id": "certorix-token", "description": "Certorix API token", "password": true, },
  ],
  "servers": {
    /* prompted: a reference */
    "certorix-prompted": { "command": "npx", "env": { "CERTORIX_API_TOKEN": "\${input:certorix-token}" }, },
    "certorix": {
      "type": "http",
      "url": "https://mcp.certorix.com/mcp",
      "headers": { "Authorization": "Bearer ${t}", }, // inline
    },
    "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer ${GH}" } },
  },
}
`,
  },
  {
    name: 'Windsurf (serverUrl)',
    format: 'json',
    sites: 1,
    text: (t) => `{
  "mcpServers": {
    "certorix": { "serverUrl": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Bearer ${t}" } }
  }
}`,
  },
  {
    name: 'Zed settings.json (old and new style, comments)',
    format: 'jsonc',
    sites: 2,
    text: (t) => `// Zed settings
{
  "ui_font_size": 16,
  "context_servers": {
    // legacy
    "certorix-legacy": { "command": { "path": "npx", "args": ["-y", "@certorix/mcp-server"], "env": { "CERTORIX_API_TOKEN": "${t}" } }, "settings": {} },
    "certorix": { "source": "custom", "command": "npx", "args": [], "env": { "CERTORIX_API_TOKEN": "${t}" }, },
  },
}
`,
  },
  {
    name: 'Gemini (httpUrl)',
    format: 'json',
    sites: 1,
    text: (t) => `{
  "mcpServers": {
    "certorix": { "httpUrl": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Bearer ${t}" }, "timeout": 30000 }
  }
}
`,
  },
  {
    name: 'Codex config.toml (inline env with comment, sub-table with literal string, http_headers)',
    format: 'toml',
    sites: 2,
    text: (t, t2) => `model = "gpt-5-codex"

[mcp_servers.certorix]
command = "npx"
args = ["-y", "@certorix/mcp-server"]
env = { CERTORIX_API_TOKEN = "${t}", LOG_LEVEL = "info" } # rotate every 90 days

[mcp_servers."certorix staging".env]
CERTORIX_API_TOKEN = '${t2}'   # literal string

[mcp_servers.certorix_remote]
url = "https://mcp.certorix.com/mcp"
http_headers = { Authorization = "Bearer ${t}" }

[mcp_servers.github]
command = "github-mcp-server"
env = { GITHUB_PERSONAL_ACCESS_TOKEN = "${GH}" }
`,
  },
  {
    name: 'Cline',
    format: 'json',
    sites: 1,
    text: (t) => `{
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
    name: 'LM Studio',
    format: 'json',
    sites: 1,
    text: (t) => `{\n  "mcpServers": {\n    "certorix": { "command": "npx", "env": { "CERTORIX_API_TOKEN": "${t}" } }\n  }\n}\n`,
  },
  {
    name: 'Continue config.yaml (list, ${{ secrets }} reference)',
    format: 'yaml',
    sites: 2,
    text: (t) => `name: My Assistant
version: 1.0.0
schema: v1
mcpServers:
  - name: Certorix
    command: npx
    args:
      - "-y"
      - "@certorix/mcp-server"
    env:
      CERTORIX_API_TOKEN: ${t}   # plain scalar
      GITHUB_TOKEN: ${GH}
  - name: Certorix remote
    type: streamable-http
    url: https://mcp.certorix.com/mcp
    requestOptions:
      headers:
        Authorization: "Bearer ${t}"
  - name: Certorix from secrets
    command: npx
    env:
      CERTORIX_API_TOKEN: \${{ secrets.CERTORIX }}
`,
  },
  {
    name: 'Goose config.yaml (envs, CRLF)',
    format: 'yaml',
    sites: 2,
    text: (t) =>
      [
        'extensions:',
        '  certorix:',
        '    enabled: true',
        '    type: stdio',
        '    cmd: npx',
        "    args: [-y, '@certorix/mcp-server']",
        `    envs: { CERTORIX_API_TOKEN: '${t}' }`,
        '  certorix-remote:',
        '    type: streamable_http',
        '    uri: https://mcp.certorix.com/mcp',
        '    headers:',
        `      Authorization: Bearer ${t}`,
        '',
      ].join('\r\n'),
  },
  {
    name: 'mcp-remote args (three spellings) and the ${AUTH_HEADER} env pattern',
    format: 'json',
    sites: 4,
    text: (t, t2) => `{
  "mcpServers": {
    "a": { "command": "npx", "args": ["-y", "mcp-remote", "https://mcp.certorix.com/sse", "--header", "Authorization: Bearer ${t}"] },
    "b": { "command": "npx", "args": ["mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization:Bearer ${t}"] },
    "c": { "command": "npx", "args": ["mcp-remote", "https://mcp.certorix.com/mcp", "--header=Authorization: Bearer ${t}"] },
    "d": {
      "command": "npx",
      "args": ["-y", "mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization:\${AUTH_HEADER}"],
      "env": { "AUTH_HEADER": "Bearer ${t}" }
    },
    "other-host": { "command": "npx", "args": ["mcp-remote", "https://mcp.example.com/sse", "--header", "Authorization: Bearer ${t2}"] }
  }
}
`,
  },
  {
    name: '.bashrc',
    format: 'shell',
    sites: 1,
    text: (t, t2) => `# ~/.bashrc
case $- in *i*) ;; *) return;; esac
export GITHUB_TOKEN=${GH}
# export CERTORIX_API_TOKEN=${t2}
export CERTORIX_API_TOKEN="${t}"
`,
  },
  {
    name: '.zshrc',
    format: 'shell',
    sites: 2,
    text: (t) => `export ZSH="$HOME/.oh-my-zsh"\n  export CERTORIX_API_TOKEN='${t}'  # certorix\ntypeset -x CERTORIX_API_TOKEN=${t}`,
  },
  {
    name: '.profile (CRLF)',
    format: 'shell',
    sites: 1,
    text: (t) => `# ~/.profile\r\nCERTORIX_API_TOKEN=${t}; export CERTORIX_API_TOKEN\r\n`,
  },
  {
    name: 'config.fish',
    format: 'fish',
    sites: 3,
    text: (t) => `set -gx PATH $HOME/.local/bin $PATH
set -gx CERTORIX_API_TOKEN ${t}
set -Ux CERTORIX_API_TOKEN '${t}'
set --export --global CERTORIX_API_TOKEN "${t}"
`,
  },
  {
    name: '.env',
    format: 'dotenv',
    sites: 3,
    text: (t) => `# dev
NODE_ENV=development
CERTORIX_API_TOKEN = ${t}   # dev token
export CERTORIX_API_TOKEN="${t}"
CERTORIX_API_TOKEN='${t}'
GITHUB_TOKEN=${GH}
`,
  },
];

describe('replaceToken: every client, byte for byte', () => {
  it.each(CLIENTS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(replaceToken(c.text(T, T2), c.format, T, N)).toEqual({ text: c.text(N, T2), replaced: c.sites });
  });

  it('replaces only the token asked for when a file holds two', () => {
    const codex = CLIENTS.find((c) => c.format === 'toml');
    expect(codex && replaceToken(codex.text(T, T2), 'toml', T2, N)).toEqual({ text: codex?.text(T, N), replaced: 1 });
  });

  it.each(CLIENTS.map((c) => [c.name, c] as const))('%s: a GitHub token is replaced only where a GitHub entry holds it, the Certorix ones untouched', (_name, c) => {
    const text = c.text(T, T2);
    const githubSites = locateTokens(text, c.format).sites.filter((s) => s.token === GH);
    expect(githubSites.every((s) => s.provider === 'github')).toBe(true);
    if (!githubSites.length) {
      expect(() => replaceToken(text, c.format, GH, N)).toThrow(EditError);
      return;
    }
    const out = replaceToken(text, c.format, GH, N);
    expect(out.replaced).toBe(githubSites.length);
    const certorix = (t: string) => locateTokens(t, c.format).sites.filter((s) => s.provider === 'certorix').map((s) => [s.keyPath, s.token]);
    expect(certorix(out.text)).toEqual(certorix(text));
  });

  it.each(['json', 'jsonc'] as const)('%s: keeps a BOM', (format) => {
    const text = (t: string): string => `\uFEFF{\n    "mcpServers": { "c": { "env": { "CERTORIX_API_TOKEN": "${t}" } } }\n}`;
    expect(replaceToken(text(T), format, T, N)).toEqual({ text: text(N), replaced: 1 });
  });

  it('keeps a BOM in YAML, TOML and shell files', () => {
    const yaml = (t: string): string => `\uFEFFextensions:\r\n  c:\r\n    envs:\r\n      CERTORIX_API_TOKEN: ${t}\r\n`;
    const toml = (t: string): string => `\uFEFF[mcp_servers.c.env]\r\nCERTORIX_API_TOKEN = "${t}"\r\n`;
    const sh = (t: string): string => `\uFEFFexport CERTORIX_API_TOKEN=${t}\r\n`;
    expect(replaceToken(yaml(T), 'yaml', T, N).text).toBe(yaml(N));
    expect(replaceToken(toml(T), 'toml', T, N).text).toBe(toml(N));
    expect(replaceToken(sh(T), 'shell', T, N).text).toBe(sh(N));
  });

  it('a YAML alias shares one literal: it is spliced once, both paths change', () => {
    const text = (t: string): string =>
      `tok: &tok "${t}"\nextensions:\n  a: { envs: { CERTORIX_API_TOKEN: *tok } }\n  b: { envs: { CERTORIX_API_TOKEN: *tok } }\n`;
    expect(replaceToken(text(T), 'yaml', T, N)).toEqual({ text: text(N), replaced: 2 });
  });

  it('a token with spaces around it keeps them', () => {
    const text = (t: string): string => `{"mcpServers":{"c":{"env":{"CERTORIX_API_TOKEN":"  ${t} "}}}}`;
    expect(replaceToken(text(T), 'json', T, N).text).toBe(text(N));
  });

  it('works on every shared test fixture (test/helpers/fixtures.ts)', () => {
    const formatOf = (rel: string): FileFormat =>
      rel.endsWith('.toml') ? 'toml' : rel.endsWith('.yaml') ? 'yaml' : rel.endsWith('.json') ? 'jsonc' : 'shell';
    for (const f of FIXTURES) expect(replaceToken(f.content(T), formatOf(f.rel), T, N).text).toBe(f.content(N));
  });
});

// ---------------------------------------------------------------------------------------
// Tokens that need escaping, per format and literal style. Each row: a document as a
// function of the raw literal, the literal before, the new token, the literal expected
// after; then the output is read back with the real parser.

const Q = 'ab"cd';
const B = 'ab\\cd';
const A = "ab'cd";
const D = 'ab$cd';
const S = 'ab cd';
const U = 'äb€🔑cd';

interface EscapeRow {
  doc: (lit: string) => string;
  before: string;
  token: string;
  after: string;
}

function rows(doc: (lit: string) => string, before: string, table: [string, string][]): EscapeRow[] {
  return table.map(([token, after]) => ({ doc, before, token, after }));
}

const jsonDoc = (lit: string): string => `{\n  "mcpServers": {\n    "c": { "env": { "CERTORIX_API_TOKEN": ${lit} } }\n  }\n}\n`;
const jsonHeaderDoc = (lit: string): string =>
  `{ "servers": { "c": { "url": "https://mcp.certorix.com/mcp", "headers": { "Authorization": ${lit} } } } }`;
const jsonArgsDoc = (lit: string): string =>
  `{ "mcpServers": { "c": { "command": "npx", "args": ["mcp-remote", "https://mcp.certorix.com/mcp", "--header", ${lit}] } } }`;
const tomlDoc = (lit: string): string => `[mcp_servers.c]\ncommand = "npx"\nenv = { CERTORIX_API_TOKEN = ${lit} } # note\n`;
const yamlDoc = (lit: string): string => `extensions:\n  c:\n    envs:\n      CERTORIX_API_TOKEN: ${lit}\n    timeout: 300\n`;
const yamlFlowDoc = (lit: string): string => `extensions:\n  c: { envs: { CERTORIX_API_TOKEN: ${lit} }, timeout: 300 }\n`;
const shDoc = (lit: string): string => `# profile\nexport CERTORIX_API_TOKEN=${lit}  # certorix\nexport OTHER=1\n`;
const fishDoc = (lit: string): string => `set -gx CERTORIX_API_TOKEN ${lit}\nset -gx OTHER 1\n`;
const envDoc = (lit: string): string => `NODE_ENV=dev\nCERTORIX_API_TOKEN=${lit}\nOTHER=1\n`;

const JSON_ROWS: EscapeRow[] = [
  ...rows(jsonDoc, `"${T}"`, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [A, `"ab'cd"`],
    [D, '"ab$cd"'],
    [S, '"ab cd"'],
    [U, `"${U}"`],
  ]),
  ...rows(jsonHeaderDoc, `"Bearer ${T}"`, [
    [Q, '"Bearer ab\\"cd"'],
    [S, '"Bearer ab cd"'],
  ]),
  ...rows(jsonArgsDoc, `"Authorization: Bearer ${T}"`, [
    [B, '"Authorization: Bearer ab\\\\cd"'],
    [U, `"Authorization: Bearer ${U}"`],
  ]),
];

const TOML_ROWS: EscapeRow[] = [
  ...rows(tomlDoc, `"${T}"`, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [A, `"ab'cd"`],
    [D, '"ab$cd"'],
    [S, '"ab cd"'],
    [U, `"${U}"`],
  ]),
  ...rows(tomlDoc, `'${T}'`, [
    [Q, `'ab"cd'`],
    [B, `'ab\\cd'`],
    [A, `"ab'cd"`],
    [S, `'ab cd'`],
  ]),
  ...rows(tomlDoc, `"""\n${T}"""`, [
    [S, '"""\nab cd"""'],
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
  ]),
  ...rows(tomlDoc, `'''${T}'''`, [[A, `"ab'cd"`]]),
];

const YAML_ROWS: EscapeRow[] = [
  ...rows(yamlDoc, T, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [A, `"ab'cd"`],
    [D, '"ab$cd"'],
    [S, 'ab cd'],
    [U, `"${U}"`],
    ['true', '"true"'],
    ['yes', '"yes"'],
    ['12345', '"12345"'],
    ['0x1F', '"0x1F"'],
    ['~', '"~"'],
    ['ab#cd', '"ab#cd"'],
    ['ab: cd', '"ab: cd"'],
    ['crtx-9.x_y/z+=', 'crtx-9.x_y/z+='],
  ]),
  ...rows(yamlFlowDoc, T, [
    ['ab,cd', '"ab,cd"'],
    ['ab}cd', '"ab}cd"'],
  ]),
  ...rows(yamlDoc, `"${T}"`, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [A, `"ab'cd"`],
    [U, `"${U}"`],
  ]),
  ...rows(yamlDoc, `'${T}'`, [
    [A, "'ab''cd'"],
    [Q, `'ab"cd'`],
    [B, "'ab\\cd'"],
  ]),
  ...rows(yamlDoc, `|-\n        ${T}\n`, [
    [Q, '|-\n        ab"cd\n'],
    [A, "|-\n        ab'cd\n"],
  ]),
];

const SHELL_ROWS: EscapeRow[] = [
  ...rows(shDoc, T, [
    [Q, `'ab"cd'`],
    [B, "'ab\\cd'"],
    [A, `'ab'\\''cd'`],
    [D, "'ab$cd'"],
    [S, "'ab cd'"],
    [U, `'${U}'`],
    ['a:b@c%d,e', 'a:b@c%d,e'],
  ]),
  ...rows(shDoc, `"${T}"`, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [A, `"ab'cd"`],
    [D, '"ab\\$cd"'],
    ['ab`id`cd', '"ab\\`id\\`cd"'],
    [S, '"ab cd"'],
  ]),
  ...rows(shDoc, `'${T}'`, [
    [A, `'ab'\\''cd'`],
    [D, "'ab$cd'"],
    [B, "'ab\\cd'"],
  ]),
];

const FISH_ROWS: EscapeRow[] = [
  ...rows(fishDoc, T, [
    [Q, `'ab"cd'`],
    [B, "'ab\\\\cd'"],
    [A, "'ab\\'cd'"],
    [D, "'ab$cd'"],
    [S, "'ab cd'"],
  ]),
  ...rows(fishDoc, `"${T}"`, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [D, '"ab\\$cd"'],
    [A, `"ab'cd"`],
  ]),
  ...rows(fishDoc, `'${T}'`, [
    [A, "'ab\\'cd'"],
    [B, "'ab\\\\cd'"],
  ]),
];

const DOTENV_ROWS: EscapeRow[] = [
  ...rows(envDoc, T, [
    [Q, '"ab\\"cd"'],
    [B, '"ab\\\\cd"'],
    [A, `"ab'cd"`],
    [D, "'ab$cd'"],
    [S, '"ab cd"'],
    [U, `"${U}"`],
  ]),
  ...rows(envDoc, `"${T}"`, [
    [Q, '"ab\\"cd"'],
    [A, `"ab'cd"`],
    [D, "'ab$cd'"],
  ]),
  ...rows(envDoc, `'${T}'`, [
    [A, `"ab'cd"`],
    [B, '"ab\\\\cd"'],
    [Q, `'ab"cd'`],
  ]),
];

function haveCommand(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What a real shell reads from the file. */
function shellValue(shell: string, text: string): string {
  return execFileSync(shell, ['-c', 'eval "$(cat)"; printf %s "$CERTORIX_API_TOKEN"'], { input: text, encoding: 'utf8' });
}

/** The value every site of the output holds, as our own locator reads it back. */
function locatedValues(text: string, format: FileFormat): string[] {
  return locateTokens(text, format).sites.map((s) => s.value);
}

describe('replaceToken: tokens that need escaping', () => {
  const label = (r: EscapeRow): string => `${r.before} -> ${JSON.stringify(r.token)} = ${r.after}`;

  it.each(JSON_ROWS.map((r) => [label(r), r] as const))('json: %s', (_l, r) => {
    const out = replaceToken(r.doc(r.before), 'json', T, r.token).text;
    expect(out).toBe(r.doc(r.after));
    const value: unknown = JSON.parse(out);
    const site = locateTokens(out, 'json').sites[0];
    expect(site?.token).toBe(r.token);
    expect(JSON.stringify(value)).toContain(JSON.stringify(r.token).slice(1, -1));
    expect(parseJsonc(out)).toEqual(value);
  });

  it.each(TOML_ROWS.map((r) => [label(r), r] as const))('toml: %s', (_l, r) => {
    const out = replaceToken(r.doc(r.before), 'toml', T, r.token).text;
    expect(out).toBe(r.doc(r.after));
    const parsed = parseToml(out) as { mcp_servers: { c: { env: { CERTORIX_API_TOKEN: string } } } };
    expect(parsed.mcp_servers.c.env.CERTORIX_API_TOKEN).toBe(r.token);
  });

  it.each(YAML_ROWS.map((r) => [label(r), r] as const))('yaml: %s', (_l, r) => {
    const out = replaceToken(r.doc(r.before), 'yaml', T, r.token).text;
    expect(out).toBe(r.doc(r.after));
    for (const version of ['1.1', '1.2'] as const) {
      const parsed = parseYaml(out, { version }) as { extensions: { c: { envs: { CERTORIX_API_TOKEN: unknown }; timeout: number } } };
      expect(parsed.extensions.c.envs.CERTORIX_API_TOKEN).toBe(r.token);
      expect(parsed.extensions.c.timeout).toBe(300);
    }
  });

  const hasBash = haveCommand('bash', ['-c', 'true']);
  const hasSh = haveCommand('sh', ['-c', 'true']);
  it.each(SHELL_ROWS.map((r) => [label(r), r] as const))('sh: %s', (_l, r) => {
    const out = replaceToken(r.doc(r.before), 'shell', T, r.token).text;
    expect(out).toBe(r.doc(r.after));
    expect(locatedValues(out, 'shell')).toEqual([r.token]);
    if (hasBash) expect(shellValue('bash', out)).toBe(r.token);
    if (hasSh) expect(shellValue('sh', out)).toBe(r.token);
  });

  const hasFish = haveCommand('fish', ['-c', 'true']);
  it.each(FISH_ROWS.map((r) => [label(r), r] as const))('fish: %s', (_l, r) => {
    const out = replaceToken(r.doc(r.before), 'fish', T, r.token).text;
    expect(out).toBe(r.doc(r.after));
    expect(locatedValues(out, 'fish')).toEqual([r.token]);
    if (hasFish) {
      const got = execFileSync('fish', ['-c', 'source; printf %s "$CERTORIX_API_TOKEN"'], { input: out, encoding: 'utf8' });
      expect(got).toBe(r.token);
    }
  });

  // python-dotenv, when the machine has it, as a second opinion on what a .env reader sees.
  const hasPyDotenv = haveCommand('python3', ['-c', 'import dotenv']);
  it.each(DOTENV_ROWS.map((r) => [label(r), r] as const))('dotenv: %s', (_l, r) => {
    const out = replaceToken(r.doc(r.before), 'dotenv', T, r.token).text;
    expect(out).toBe(r.doc(r.after));
    expect(locatedValues(out, 'dotenv')).toEqual([r.token]);
    if (hasPyDotenv) {
      const py = 'import io,sys,dotenv; sys.stdout.write(dotenv.dotenv_values(stream=io.StringIO(sys.stdin.read()))["CERTORIX_API_TOKEN"])';
      expect(execFileSync('python3', ['-c', py], { input: out, encoding: 'utf8' })).toBe(r.token);
    }
  });

  it('YAML: a token that a plain multi-line scalar cannot keep is re-encoded on one line', () => {
    const doc = (lit: string): string => `extensions:\n  c:\n    headers:\n      Authorization: ${lit}\n    uri: https://mcp.certorix.com/mcp\n`;
    const out = replaceToken(doc(`Bearer\n        ${T}`), 'yaml', T, Q).text;
    expect(out).toBe(doc('"Bearer ab\\"cd"'));
    expect(parseAllDocuments(out)[0]?.toJS()).toEqual({
      extensions: { c: { headers: { Authorization: `Bearer ${Q}` }, uri: 'https://mcp.certorix.com/mcp' } },
    });
  });
});

describe('replaceToken: refusals (EditError, never a token in the message)', () => {
  const doc = jsonDoc(`"${T}"`);

  const expectRefusal = (fn: () => unknown, pattern: RegExp, ...secrets: string[]): void => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EditError);
    const message = (err as Error).message;
    expect(message).toMatch(pattern);
    for (const s of secrets) expect(message).not.toContain(s);
  };

  it('when the old token is at no site', () => {
    expectRefusal(() => replaceToken(doc, 'json', T2, N), /not in this config/, T, T2, N);
  });

  it('when the old token is only a reference or in a comment', () => {
    const text = `// old: ${T}\n{ "servers": { "c": { "env": { "CERTORIX_API_TOKEN": "\${input:tok}" } } } }`;
    expectRefusal(() => replaceToken(text, 'jsonc', T, N), /not in this config/, T, N);
  });

  it('when the file does not parse, with line:column', () => {
    expectRefusal(() => replaceToken(`{ "mcpServers": { "c": { "env": { "CERTORIX_API_TOKEN": "${T}" }`, 'json', T, N), /cannot parse.*1:\d+/, T, N);
  });

  it.each([
    ['empty', ''],
    ['leading space', ` ${N}`],
    ['newline', `${N}\nx`],
    ['tab', `a\tb`],
    ['a ${} reference', '${CERTORIX}'],
    ['a lone surrogate', 'ab\ud83dcd'],
    ['a C1 control', 'ab\u0085cd'],
  ])('when the new token is unusable: %s', (_name, bad) => {
    expectRefusal(() => replaceToken(doc, 'json', T, bad), /new token/, T);
    expect(() => replaceToken(doc, 'json', T, bad)).toThrow(EditError);
  });

  it('when the rewritten file would no longer hold the site (verification)', () => {
    // A bare token in AUTH_HEADER stops being one once it holds a space.
    const text = `{ "mcpServers": { "d": { "command": "npx", "args": ["mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization:\${AUTH_HEADER}"], "env": { "AUTH_HEADER": "${T}" } } } }`;
    expectRefusal(() => replaceToken(text, 'json', T, S), /verification failed/, T, S);
  });

  it('when a .env value needs both a quote and a dollar', () => {
    expectRefusal(() => replaceToken(envDoc(T), 'dotenv', T, `a'b$c\\d`), /cannot encode/, T);
  });
});
