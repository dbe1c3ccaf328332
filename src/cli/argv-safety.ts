/**
 * Pure: usage messages that never echo an argument that could be a token (contract, CLI
 * manners). A pasted token in argv is already in the shell history and in `ps`; printing it
 * again would put it in a terminal's scrollback, a CI log or a screen share too. So a bad
 * value is named "the value you passed", with at most its fingerprint (which is what the
 * rest of the tool shows for tokens, so the user can recognise it).
 */
import { fingerprint } from '../fingerprint.js';

/** Long enough and free of spaces: it may be a secret, so the user is told to treat it as leaked. */
export function couldBeToken(value: string): boolean {
  return value.length >= 16 && !/\s/.test(value);
}

const LEAKED = 'If it was a token, it is now in your shell history: treat it as leaked and rotate it ("mcp-token-rotator rotate", or regenerate it in the web UI and pipe it to "mcp-token-rotator set-token").';

export function badFingerprintMessage(option: string, value: string): string {
  const base = `${option} takes a fingerprint: 12 hex characters as "status" shows. The value you passed is not one (not shown; its fingerprint is ${fingerprint(value)}).`;
  return couldBeToken(value) ? `${base} ${LEAKED}` : base;
}

/** set-token with an argument: the token goes through stdin only. */
export function setTokenArgumentMessage(): { message: string; hint: string } {
  return {
    message:
      'set-token takes no argument: it reads the token from stdin, never from the command line (which "ps" shows to every user). The value you passed is not shown. ' +
      'It is now in your shell history: treat it as leaked: regenerate it in the web UI of the service that issued it (Certorix: the MCP / API page), pipe the new one in, and delete the line from your history.',
    hint: 'Pipe the token in: "mcp-token-rotator set-token < token.txt", or run "mcp-token-rotator set-token" alone and paste it when asked (it is not echoed).',
  };
}

/** An option name as the user typed it, when it plainly is one; otherwise not echoed. */
function safeOptionName(text: string): string | null {
  return /^--?[A-Za-z][A-Za-z-]{0,30}$/.test(text) ? text : null;
}

/**
 * node:util parseArgs errors, rewritten where they would echo what the user typed: an
 * unexpected positional is never shown, an unknown option only when it looks like one.
 */
export function safeParseError(command: string, e: { code?: string; message: string }): string {
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return `${command} takes no positional argument; the value you passed is not shown (it could be a token).`;
  }
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const name = /'([^']*)'/.exec(e.message)?.[1] ?? '';
    const safe = safeOptionName(name);
    return safe ? `${command}: unknown option ${safe}.` : `${command}: an unknown option (not shown: it could be a token).`;
  }
  return `${command}: ${e.message}`;
}
