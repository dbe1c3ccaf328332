import { describe, expect, it } from 'vitest';
import { childEnv, isSecretName } from '../../src/process/child-env.js';
import { describeRefusal, healVerdict, type HealFacts } from '../../src/rotation/heal.js';

describe('childEnv: what a child process inherits', () => {
  it.each([
    ['CERTORIX_API_TOKEN', true],
    ['GITHUB_TOKEN', true],
    ['NPM_AUTH_TOKEN', true],
    ['AWS_SECRET_ACCESS_KEY', true],
    ['AWS_ACCESS_KEY_ID', true],
    ['OPENAI_API_KEY', true],
    ['ANTHROPIC_APIKEY', true],
    ['PGPASSWORD', true],
    ['DB_PASSWD', true],
    ['GPG_PASSPHRASE', true],
    ['SSH_PRIVATE_KEY', true],
    ['GOOGLE_APPLICATION_CREDENTIALS', true],
    ['HTTP_AUTH', true],
    ['PROXY_AUTHORIZATION', true],
    ['NGROK_AUTHTOKEN', true],
    ['SESSION_COOKIE', true],
    ['GITHUB_PAT', true],
    ['certorix_api_token', true],
    ['PATH', false],
    ['HOME', false],
    ['SSH_AUTH_SOCK', false],
    ['XAUTHORITY', false],
    ['DBUS_SESSION_BUS_ADDRESS', false],
    ['XDG_RUNTIME_DIR', false],
    ['GIT_AUTHOR_NAME', false],
    ['PATHEXT', false],
    ['LANG', false],
    ['MCP_TOKEN_ROTATOR_OLD_FINGERPRINT', true], // by name it looks like one; hooks get it through `extra`
  ])('%s is a secret: %s', (name, secret) => {
    expect(isSecretName(name)).toBe(secret);
  });

  it('drops secrets, keeps the rest, adds the extras given', () => {
    const env = childEnv({ PATH: '/bin', HOME: '/h', CERTORIX_API_TOKEN: 'ctx_live_x', GITHUB_TOKEN: 'g', SSH_AUTH_SOCK: '/s', UNSET: undefined }, { LC_ALL: 'C', MCP_TOKEN_ROTATOR_NEW_FINGERPRINT: 'abc' });
    expect(env).toEqual({ PATH: '/bin', HOME: '/h', SSH_AUTH_SOCK: '/s', LC_ALL: 'C', MCP_TOKEN_ROTATOR_NEW_FINGERPRINT: 'abc' });
  });
});

describe('healVerdict: where the current token may be written', () => {
  const ok: HealFacts = { file: '/h/.cursor/mcp.json', known: true, uid: 1000, userUid: 1000, mode: 0o100600, gitRoot: null };
  it.each<[string, Partial<HealFacts>, string[]]>([
    ['a private file the lineage lived in', {}, []],
    ['a file that never held the token', { known: false }, ['unknown-location']],
    ['world-readable', { mode: 0o100644 }, ['readable-by-others']],
    ['group-readable', { mode: 0o100640 }, ['readable-by-others']],
    ['group-writable but not readable', { mode: 0o100620 }, []],
    ["another user's file", { uid: 0 }, ['not-owner']],
    ['inside a git work tree', { gitRoot: '/h/code/repo' }, ['in-git']],
    ['planted: new, world-readable, in a clone', { known: false, mode: 0o100644, gitRoot: '/h/code/x' }, ['unknown-location', 'readable-by-others', 'in-git']],
    ['Windows (no owner or mode notion)', { uid: null, userUid: null, mode: null }, []],
    ['could not be looked at', { unreadable: 'EACCES', uid: null, mode: null }, ['unreadable']],
  ])('%s', (_n, o, reasons) => {
    const v = healVerdict({ ...ok, ...o });
    if (!reasons.length) expect(v).toEqual({ heal: true });
    else expect(v.heal === false && v.reasons).toEqual(reasons);
  });

  it('says what happened and what to do, naming the file', () => {
    const v = healVerdict({ ...ok, mode: 0o100644 });
    if (v.heal) throw new Error('should refuse');
    const d = describeRefusal('aaaaaaaaaaaa', 'bbbbbbbbbbbb', ok.file, v);
    expect(d.message).toContain('Retired token aaaaaaaaaaaa appeared in /h/.cursor/mcp.json');
    expect(d.message).toContain('its group and everyone can read it (mode 0644)');
    expect(d.fix).toContain('chmod 600 /h/.cursor/mcp.json');
    const planted = healVerdict({ ...ok, known: false });
    if (planted.heal) throw new Error('should refuse');
    expect(describeRefusal('aaaaaaaaaaaa', null, ok.file, planted).fix).toMatch(/Find out who put the token/);
  });
});
