import { describe, expect, it } from 'vitest';
import { locateTokens, type FileFormat } from '../../src/clients/formats.js';

const remote = (auth: string) => JSON.stringify({ mcpServers: { c: { url: 'https://mcp.certorix.com/mcp', headers: { Authorization: auth } } } });
const env = (v: string) => JSON.stringify({ mcpServers: { c: { command: 'npx', env: { CERTORIX_API_TOKEN: v } } } });

describe('environment references are not tokens', () => {
  it.each<[string, FileFormat, string]>([
    ['Gemini CLI $VAR in env', 'json', env('$CERTORIX_API_TOKEN')],
    ['Windows %VAR%', 'json', env('%CERTORIX_API_TOKEN%')],
    ['{env:VAR} template', 'json', env('{env:CERTORIX_API_TOKEN}')],
    ['{{ VAR }} template', 'json', env('{{ CERTORIX_API_TOKEN }}')],
    ['VS Code ${input:x}', 'jsonc', env('${input:certorix}')],
    ['Bearer $VAR header', 'json', remote('Bearer $CERTORIX_API_TOKEN')],
    ['Bearer ${VAR} header', 'json', remote('Bearer ${CERTORIX_API_TOKEN}')],
  ])('%s', (_n, format, text) => {
    expect(locateTokens(text, format).sites).toEqual([]);
  });

  it('a literal token beside such a reference is still found', () => {
    expect(locateTokens(remote('Bearer ctx_literal_token_0123'), 'json').sites.map((s) => s.token)).toEqual(['ctx_literal_token_0123']);
    expect(locateTokens(env('ctx$dollar_inside_token'), 'json').sites.map((s) => s.token)).toEqual(['ctx$dollar_inside_token']);
  });
});
