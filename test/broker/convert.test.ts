import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../helpers/fixtures.js';
import { locateTokens, type FileFormat } from '../../src/clients/formats.js';
import { parseJsonValue } from '../../src/clients/locate-json.js';
import { parseTomlValue } from '../../src/clients/locate-toml.js';
import { parseYamlValue } from '../../src/clients/locate-yaml.js';
import { planFile, restoreInFile } from '../../src/broker/convert/file.js';
import { entryPathOf, launchChange, portableEntry, slugOf, TOKEN_REF, type BrokerTarget, type EntryPlan } from '../../src/broker/convert/convert.js';
import { TOKEN_MARKER } from '../../src/broker/registry.js';
import { getIn, locateEntry, parsePositions } from '../../src/broker/convert/positions.js';

const TOK = 'ctx_live_Abc123def456GHI789jkl012';
const NEW_TOK = 'ctx_live_Zyx987wvu654TSR321qpo000';
const NODE = '/usr/local/bin/node';
const CLI = '/opt/mtr/dist/src/cli/main.js';
const STATE = '/home/dev/.local/state/mcp-token-rotator';

function target(endpoint = true): BrokerTarget {
  return {
    node: NODE,
    cli: CLI,
    stateDir: STATE,
    slot: 'certorix-0a1b2c3d',
    endpoint: endpoint ? { origin: 'http://127.0.0.1:47123', routeSecret: 'SeCrEt_route-0123456789ab' } : null,
    endpointMissing: 'no daemon',
    headersHelper: `${NODE} ${CLI} headers certorix-0a1b2c3d --state-dir ${STATE}`,
  };
}

function value(text: string, format: FileFormat): unknown {
  if (format === 'toml') return parseTomlValue(text);
  if (format === 'yaml') return parseYamlValue(text);
  return parseJsonValue(text);
}

interface Case {
  name: string;
  client: string;
  format: FileFormat;
  text: string;
  /** Expected mode of each entry holding the token, in file order. */
  modes: string[];
}

const fixtureFormat: Record<string, FileFormat> = { vscode: 'jsonc', zed: 'jsonc', gemini: 'jsonc', codex: 'toml', continue: 'yaml', goose: 'yaml', shell: 'shell' };

const CASES: Case[] = [
  ...FIXTURES.map((f) => ({
    name: `fixture ${f.client}`,
    client: f.client,
    format: fixtureFormat[f.client] ?? 'json',
    text: f.content(TOK),
    modes:
      f.client === 'claude-code'
        ? ['exec', 'headers-helper']
        : f.client === 'windsurf' || f.client === 'gemini'
          ? ['endpoint']
          : f.client === 'shell'
            ? ['plaintext']
            : ['exec'],
  })),
  {
    name: 'roo, multi-line args, tabs',
    client: 'roo',
    format: 'json',
    text: `{\n\t"mcpServers": {\n\t\t"certorix": {\n\t\t\t"command": "npx",\n\t\t\t"args": [\n\t\t\t\t"-y",\n\t\t\t\t"@certorix/mcp-server"\n\t\t\t],\n\t\t\t"env": {\n\t\t\t\t"LOG": "debug",\n\t\t\t\t"CERTORIX_API_TOKEN": "${TOK}"\n\t\t\t},\n\t\t\t"alwaysAllow": []\n\t\t}\n\t}\n}`,
    modes: ['exec'],
  },
  {
    name: 'zed, older command object, CRLF',
    client: 'zed',
    format: 'jsonc',
    text: ['// zed', '{', '  "context_servers": {', '    "certorix": {', '      "command": { "path": "npx", "args": ["-y", "@certorix/mcp-server"], "env": { "CERTORIX_API_TOKEN": "' + TOK + '" } },', '      "settings": {}', '    }', '  }', '}', ''].join('\r\n'),
    modes: ['exec'],
  },
  {
    name: 'codex, [env] sub-table and a comment',
    client: 'codex',
    format: 'toml',
    text: `[mcp_servers.certorix]\ncommand = "npx"\nargs = ["-y", "@certorix/mcp-server"]\n\n[mcp_servers.certorix.env]\nCERTORIX_API_TOKEN = "${TOK}" # ours\nLOG = 'info'\n\n[other]\nx = 1\n`,
    modes: ['exec'],
  },
  {
    name: 'codex, dotted env key, no args',
    client: 'codex',
    format: 'toml',
    text: `[mcp_servers.certorix]\ncommand = "certorix-mcp"\nenv.CERTORIX_API_TOKEN = "${TOK}"\n`,
    modes: ['exec'],
  },
  {
    name: 'codex, inline entry under [mcp_servers]',
    client: 'codex',
    format: 'toml',
    text: `[mcp_servers]\ncertorix = { command = "npx", args = ["-y", "@certorix/mcp-server"], env = { CERTORIX_API_TOKEN = "${TOK}" } }\n`,
    modes: ['exec'],
  },
  {
    name: 'codex, remote with http_headers',
    client: 'codex',
    format: 'toml',
    text: `[mcp_servers.certorix]\nurl = "https://mcp.certorix.com/mcp"\nhttp_headers = { Authorization = "Bearer ${TOK}", "X-Trace" = "1" }\n`,
    modes: ['endpoint'],
  },
  {
    name: 'continue, remote with requestOptions',
    client: 'continue',
    format: 'yaml',
    text: `mcpServers:\n  - name: Certorix Remote\n    type: streamable-http\n    url: https://mcp.certorix.com/mcp\n    requestOptions:\n      headers:\n        Authorization: Bearer ${TOK}\n`,
    modes: ['endpoint'],
  },
  {
    name: 'goose, remote with uri, comments',
    client: 'goose',
    format: 'yaml',
    text: `# goose\nextensions:\n  certorix:\n    type: streamable_http\n    uri: https://mcp.certorix.com/mcp # remote\n    headers:\n      Authorization: "Bearer ${TOK}"\n      X-Other: keep\n    enabled: true\n`,
    modes: ['endpoint'],
  },
  {
    name: 'claude code project entry keeps other headers',
    client: 'claude-code',
    format: 'json',
    text: `{"mcpServers":{"c":{"type":"sse","url":"https://mcp.certorix.com/sse","headers":{"X-Team":"a","Authorization":"Bearer ${TOK}"}}}}`,
    modes: ['headers-helper'],
  },
  {
    name: 'mcp-remote bridge, Authorization:${VAR} with the value in env',
    client: 'claude-desktop',
    format: 'json',
    text: `{\n  "mcpServers": {\n    "certorix": {\n      "command": "npx",\n      "args": ["mcp-remote", "https://mcp.certorix.com/sse", "--header", "Authorization:\${AUTH_HEADER}"],\n      "env": { "AUTH_HEADER": "Bearer ${TOK}" }\n    }\n  }\n}\n`,
    modes: ['exec'],
  },
  {
    name: 'continue stdio, only env key (env becomes {}), no final newline',
    client: 'continue',
    format: 'yaml',
    text: `mcpServers:\n  - name: certorix\n    command: npx\n    args: ["-y", "@certorix/mcp-server"]\n    env:\n      CERTORIX_API_TOKEN: ${TOK}\n  - name: x\n    command: y`,
    modes: ['exec'],
  },
  {
    name: 'vscode remote without daemon stays plaintext',
    client: 'vscode',
    format: 'jsonc',
    text: `{ "servers": { "c": { "type": "http", "url": "https://mcp.certorix.com/mcp", "headers": { "Authorization": "Bearer ${TOK}" } } } }`,
    modes: ['plaintext-no-endpoint'],
  },
  {
    name: 'claude code mcp-remote bridge stays plaintext',
    client: 'claude-code',
    format: 'json',
    text: `{ "mcpServers": { "c": { "command": "npx", "args": ["mcp-remote", "https://mcp.certorix.com/mcp", "--header", "Authorization: Bearer ${TOK}"] } } }`,
    modes: ['plaintext'],
  },
];

describe('broker conversion, every client form', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const noEndpoint = c.modes.includes('plaintext-no-endpoint');
      const res = planFile(c.text, c.format, c.client, () => target(!noEndpoint));
      const mine = res.entries.filter((e) => e.plan.token === TOK);
      expect(mine.map((e) => e.plan.mode)).toEqual(c.modes.map((m) => (m === 'plaintext-no-endpoint' ? 'plaintext' : m)));
      // A type predicate, so the loops below see a converted plan (start, upstreamUrl, ...) without casts.
      const converted = mine.filter((e): e is (typeof mine)[number] & { plan: Exclude<EntryPlan, { mode: 'plaintext' }> } => e.plan.mode !== 'plaintext');
      if (!converted.length) {
        expect(res.text).toBe(c.text);
        if (noEndpoint) expect(mine[0]?.plan.mode === 'plaintext' && mine[0].plan.reason).toBe('no daemon');
        return;
      }
      // No token left, the file still parses, and only the entries' spans changed.
      expect(res.text).not.toContain(TOK);
      expect(parsePositions(res.text, c.format)).not.toBeNull();
      expect(() => value(res.text, c.format)).not.toThrow();
      expect(locateTokens(res.text, c.format).sites.filter((s) => s.token === TOK)).toEqual([]);
      const first = converted[0]!.plan;
      expect(res.text.slice(0, first.start)).toBe(c.text.slice(0, first.start));
      if (c.text.includes('\r\n')) expect(res.text.replace(/\r\n/g, '')).not.toContain('\n');

      // The converted shape.
      const doc = value(res.text, c.format) as Record<string, unknown>;
      for (const e of converted) {
        const entry = e.entryPath.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], doc) as Record<string, unknown>;
        if (e.plan.mode === 'exec') {
          const holder = (typeof entry.command === 'object' ? entry.command : entry) as Record<string, unknown>;
          expect(holder.command ?? holder.cmd ?? holder.path).toBe(NODE);
          const args = holder.args as string[];
          expect(args.slice(0, 6)).toEqual([CLI, 'exec', 'certorix-0a1b2c3d', '--state-dir', STATE, '--']);
          const env = (holder.env ?? holder.envs) as Record<string, string> | undefined;
          expect(env?.CERTORIX_API_TOKEN).toBeUndefined();
          if (c.name.includes('bridge')) expect(args.some((a) => a.includes(TOKEN_REF))).toBe(true);
        } else if (e.plan.mode === 'headers-helper') {
          expect(entry.headersHelper).toBe(target().headersHelper);
          const h = entry.headers as Record<string, string> | undefined;
          expect(h?.Authorization).toBeUndefined();
        } else {
          const url = (entry.url ?? entry.serverUrl ?? entry.httpUrl ?? entry.uri) as string;
          expect(url).toBe(`http://127.0.0.1:47123/SeCrEt_route-0123456789ab/${slugOf(e.server)}`);
          expect(e.plan.upstreamUrl).toMatch(/^https:\/\/mcp\.certorix\.com\//);
        }
      }

      // disable: byte-identical with the same token; identical but the token with a new one.
      let back = res.text;
      for (const e of [...converted].reverse()) {
        const p = e.plan;
        back = restoreInFile(back, c.format, c.client, { entryPath: e.entryPath, kind: p.mode, slot: 'certorix-0a1b2c3d', originalText: p.originalText, convertedText: p.convertedText, upstreamUrl: p.upstreamUrl }, TOK).text;
      }
      expect(back).toBe(c.text);
      let rotated = res.text;
      for (const e of [...converted].reverse()) {
        const p = e.plan;
        rotated = restoreInFile(rotated, c.format, c.client, { entryPath: e.entryPath, kind: p.mode, slot: 'certorix-0a1b2c3d', originalText: p.originalText, convertedText: p.convertedText, upstreamUrl: p.upstreamUrl }, NEW_TOK).text;
      }
      expect(rotated).toBe(c.text.split(TOK).join(NEW_TOK));
    });
  }
});

describe('semantic restore after the user edited the converted entry', () => {
  const edits: Array<{ name: string; client: string; format: FileFormat; text: string; edit: (s: string) => string }> = [
    {
      name: 'json stdio with an env var added',
      client: 'cursor',
      format: 'json',
      text: `{\n  "mcpServers": {\n    "certorix": {\n      "command": "npx",\n      "args": ["-y", "@certorix/mcp-server"],\n      "env": { "CERTORIX_API_TOKEN": "${TOK}" }\n    }\n  }\n}\n`,
      edit: (s) => s.replace('"command"', '"disabled": false,\n      "command"'),
    },
    {
      name: 'yaml stdio with a key added',
      client: 'goose',
      format: 'yaml',
      text: FIXTURES.find((f) => f.client === 'goose')!.content(TOK),
      edit: (s) => s.replace('timeout: 300', 'timeout: 600'),
    },
    {
      name: 'toml stdio with a comment added',
      client: 'codex',
      format: 'toml',
      text: FIXTURES.find((f) => f.client === 'codex')!.content(TOK),
      edit: (s) => s.replace('[mcp_servers.certorix]\n', '[mcp_servers.certorix]\n# edited\n'),
    },
    {
      name: 'claude code headersHelper with a header added',
      client: 'claude-code',
      format: 'json',
      text: `{"mcpServers":{"c":{"type":"http","url":"https://mcp.certorix.com/mcp","headers":{"Authorization":"Bearer ${TOK}"}}}}`,
      edit: (s) => s.replace('"type":"http"', '"type":"http","timeout":5'),
    },
    {
      name: 'endpoint entry with a key added',
      client: 'windsurf',
      format: 'json',
      text: FIXTURES.find((f) => f.client === 'windsurf')!.content(TOK),
      edit: (s) => s.replace('"serverUrl"', '"disabled": false,\n      "serverUrl"'),
    },
  ];
  for (const c of edits) {
    it(c.name, () => {
      const res = planFile(c.text, c.format, c.client, () => target());
      const e = res.entries[0]!;
      const p = e.plan as Extract<typeof e.plan, { start: number }>;
      const edited = c.edit(res.text);
      expect(edited).not.toBe(res.text);
      const back = restoreInFile(edited, c.format, c.client, { entryPath: e.entryPath, kind: p.mode, slot: 'certorix-0a1b2c3d', originalText: p.originalText, convertedText: p.convertedText, upstreamUrl: p.upstreamUrl }, NEW_TOK);
      expect(back.exact).toBe(false);
      const sites = locateTokens(back.text, c.format).sites;
      expect(sites.map((s) => s.token)).toEqual([NEW_TOK]);
      // The plaintext entry is the original one with the new token (plus the user's edit).
      const want = value(c.edit(c.text.split(TOK).join(NEW_TOK)), c.format);
      const got = value(back.text, c.format);
      const path = entryPathOf(sites[0]!.keyPath);
      const pick = (d: unknown) => path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], d);
      const norm = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v))) as unknown;
      expect(norm(pick(got))).toEqual(norm(pick(want)));
    });
  }
});

describe('positions', () => {
  it('a TOML entry split across the file is not one span', () => {
    const t = `[mcp_servers.c]\ncommand = "x"\n[other]\na = 1\n[mcp_servers.c.env]\nCERTORIX_API_TOKEN = "${TOK}"\n`;
    expect(locateEntry(t, 'toml', ['mcp_servers', 'c'])).toBeNull();
    const res = planFile(t, 'toml', 'codex', () => target());
    expect(res.entries[0]?.plan.mode).toBe('plaintext');
    expect(res.text).toBe(t);
  });
  it('finds nested nodes in each format', () => {
    expect(getIn(parsePositions('{"a":{"b":["x"]}}', 'json')!, ['a', 'b', 0])).toMatchObject({ t: 'str', value: 'x' });
    expect(getIn(parsePositions('a:\n  b: [x]\n', 'yaml')!, ['a', 'b', 0])).toMatchObject({ t: 'str', value: 'x' });
    expect(getIn(parsePositions('[a]\nb = ["x"]\n', 'toml')!, ['a', 'b', 0])).toMatchObject({ t: 'str', value: 'x' });
  });
});

describe('launchChange: does a restored entry still run what was converted?', () => {
  const M = TOKEN_MARKER;
  // The recorded original and the entry now in the file, each as the entry's own span.
  const json = (e: Record<string, unknown>, indent = 2) => JSON.stringify(e, null, indent).split('"@T@"').join(JSON.stringify(M));
  const base = { command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_API_TOKEN: '@T@' } };
  it.each<[string, Record<string, unknown>, number, RegExp | null]>([
    ['the same entry', base, 2, null],
    ['the same entry, re-indented', base, 4, null],
    ['another key that does not decide the launch (type, disabled)', { ...base, type: 'stdio', disabled: false }, 2, null],
    ['another command', { ...base, command: './evil.sh' }, 2, /runs "\.\/evil\.sh" instead of "npx"/],
    ['other args', { ...base, args: ['-y', '@evil/server'] }, 2, /args differs/],
    ['a variable added to env', { ...base, env: { CERTORIX_API_TOKEN: '@T@', NODE_OPTIONS: '--require /tmp/x.js' } }, 2, /env differs/],
    ['a cwd added', { ...base, cwd: '/tmp' }, 2, /cwd differs/],
  ])('%s', (_n, now, indent, want) => {
    const doc = (e: string) => `{\n  "mcpServers": {\n    "certorix": ${e}\n  }\n}\n`;
    const cur = json(now, indent);
    const text = doc(cur);
    const start = text.indexOf(cur);
    const got = launchChange(text, 'json', ['mcpServers', 'certorix'], start, start + cur.length, cur, json(base));
    if (want === null) expect(got).toBeNull();
    else expect(got).toMatch(want);
  });

  it('a remote entry pointed at another URL (TOML)', () => {
    const was = `[mcp_servers.certorix]\nurl = "https://mcp.certorix.com/mcp"\nhttp_headers = { Authorization = "Bearer ${M}" }\n`;
    const now = `[mcp_servers.certorix]\nurl = "https://evil.example/mcp"\nhttp_headers = { Authorization = "Bearer ${M}" }\n`;
    const text = `model = "x"\n\n${now}`;
    const start = text.indexOf(now);
    expect(launchChange(text, 'toml', ['mcp_servers', 'certorix'], start, start + now.trimEnd().length, now.trimEnd(), was.trimEnd())).toMatch(/url differs/);
    expect(launchChange(text, 'toml', ['mcp_servers', 'certorix'], start, start + now.trimEnd().length, was.trimEnd(), was.trimEnd())).toBeNull();
  });
});

// Issue 15, item 6: project-scoped configs get entries with no path of this user's.
describe('portable entries (project-scoped configs)', () => {
  it.each<[string, Parameters<typeof portableEntry>[0], boolean]>([
    ['a file found through extraConfigs', { origin: 'extra', gitTracked: false, client: 'project', entryPath: ['mcpServers', 'certorix'] }, true],
    ['a catalog file tracked by git (dotfiles)', { origin: 'catalog', gitTracked: true, client: 'cursor', entryPath: ['mcpServers', 'certorix'] }, true],
    ["Claude Code's projects.* entry", { origin: 'catalog', gitTracked: false, client: 'claude-code', entryPath: ['projects', '/home/dev/app', 'mcpServers', 'certorix'] }, true],
    ["Claude Code's user-level entry", { origin: 'catalog', gitTracked: false, client: 'claude-code', entryPath: ['mcpServers', 'certorix'] }, false],
    ['a GUI client user config', { origin: 'catalog', gitTracked: false, client: 'claude-desktop', entryPath: ['mcpServers', 'certorix'] }, false],
  ])('%s: %s', (_n, o, want) => {
    expect(portableEntry(o)).toBe(want);
  });

  const text = `{\n  "mcpServers": {\n    "certorix": {\n      "command": "npx",\n      "args": ["-y", "@certorix/mcp-server"],\n      "env": { "CERTORIX_API_TOKEN": "${TOK}", "CERTORIX_REGION": "eu" }\n    }\n  }\n}\n`;
  const portable = (): BrokerTarget => ({ ...target(), portable: true, headersHelper: 'mcp-token-rotator headers certorix-0a1b2c3d' });

  it('stdio: the bare command and the slot, no node, CLI or state-dir path; disable restores it byte for byte', () => {
    const plan = planFile(text, 'json', 'project', () => portable());
    const entry = (JSON.parse(plan.text) as { mcpServers: { certorix: { command: string; args: string[]; env: Record<string, string> } } }).mcpServers.certorix;
    expect(entry.command).toBe('mcp-token-rotator');
    expect(entry.args).toEqual(['exec', 'certorix-0a1b2c3d', '--', 'npx', '-y', '@certorix/mcp-server']);
    expect(entry.env).toEqual({ CERTORIX_REGION: 'eu' });
    for (const p of [NODE, CLI, STATE, '--state-dir']) expect(plan.text).not.toContain(p);
    const e = plan.entries[0]!.plan as Extract<EntryPlan, { start: number }>;
    const ce = { entryPath: ['mcpServers', 'certorix'], kind: 'exec' as const, slot: 'certorix-0a1b2c3d', originalText: e.originalText, convertedText: e.convertedText, upstreamUrl: null };
    expect(restoreInFile(plan.text, 'json', 'project', ce, NEW_TOK)).toEqual({ text: text.split(TOK).join(NEW_TOK), exact: true });
    // Edited since (a key added): restored from its current form, portable prefix understood.
    const edited = plan.text.replace('"command"', '"timeout": 30,\n      "command"');
    const back = restoreInFile(edited, 'json', 'project', ce, NEW_TOK);
    expect(back.exact).toBe(false);
    const again = (JSON.parse(back.text) as { mcpServers: { certorix: { command: string; args: string[]; env: Record<string, string> } } }).mcpServers.certorix;
    expect(again).toMatchObject({ command: 'npx', args: ['-y', '@certorix/mcp-server'], env: { CERTORIX_REGION: 'eu', CERTORIX_API_TOKEN: NEW_TOK } });
  });
});
