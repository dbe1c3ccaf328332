/**
 * The few error classes a user can meet. Every message names the file or token
 * (by fingerprint) and says what to do next; `code` is stable for scripts and tests.
 */

export const EXIT = { ok: 0, due: 1, failure: 2, usage: 64 } as const;

export type ErrorCode =
  | 'E_USAGE'
  | 'E_SETTINGS'
  | 'E_CONFIG_PARSE'
  | 'E_CONFIG_UNWRITABLE'
  | 'E_CONFIG_CHANGED'
  | 'E_CONFIG_READ'
  | 'E_CONFIG_CANNOT_HOLD'
  | 'E_TOKEN_INVALID'
  | 'E_TOKEN_FORBIDDEN'
  | 'E_TOKEN_UNKNOWN'
  | 'E_ACCOUNT_CHANGE'
  | 'E_API'
  | 'E_API_TRANSIENT'
  | 'E_INSECURE_URL'
  | 'E_LOCKED'
  | 'E_DAEMON_RUNNING'
  | 'E_ROTATION'
  | 'E_INPUT'
  | 'E_SERVICE'
  | 'E_BROKER_STORE'
  | 'E_BROKER';

export class RotatorError extends Error {
  readonly code: ErrorCode;
  /** What the user should do next; appended to the message when printed. */
  readonly hint: string | undefined;
  /** The file the error is about, when there is one. */
  readonly file: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; file?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RotatorError';
    this.code = code;
    this.hint = opts.hint;
    this.file = opts.file;
  }

  get exitCode(): number {
    return this.code === 'E_USAGE' ? EXIT.usage : EXIT.failure;
  }

  /** One line for humans: what went wrong, then what to do. */
  describe(): string {
    return this.hint ? `${this.message}\n  -> ${this.hint}` : this.message;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, file: this.file };
  }
}

export class UsageError extends RotatorError {
  constructor(message: string, hint = 'Run "mcp-token-rotator --help" for usage.') {
    super('E_USAGE', message, { hint });
    this.name = 'UsageError';
  }
}

export class SettingsError extends RotatorError {
  readonly issues: string[];
  constructor(file: string, issues: string[], hint?: string) {
    super('E_SETTINGS', `Invalid settings in ${file}:\n${issues.map((i) => `  - ${i}`).join('\n')}`, {
      file,
      hint: hint ?? `Fix the field(s) above in ${file} (or pass another file with --config), then run the command again.`,
    });
    this.name = 'SettingsError';
    this.issues = issues;
  }
}

export class ConfigFileError extends RotatorError {
  constructor(code: Extract<ErrorCode, `E_CONFIG_${string}`>, file: string, message: string, hint: string, cause?: unknown) {
    super(code, message, { file, hint, cause });
    this.name = 'ConfigFileError';
  }
}

/** Errors from the vendor API, classified so retry policy can be a pure decision. */
export type ApiErrorKind = 'transient' | 'invalid-token' | 'forbidden' | 'conflict' | 'permanent';

export class ApiError extends RotatorError {
  readonly kind: ApiErrorKind;
  readonly status: number | undefined;
  /** Milliseconds the server asked us to wait (Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;
  /**
   * The request surely never reached the server (no connection was made), so it did
   * nothing: even a call that must never be repeated (a provider without idempotency) may
   * be sent again.
   */
  readonly notSent: boolean;

  constructor(
    kind: ApiErrorKind,
    message: string,
    opts: { status?: number; retryAfterMs?: number; hint?: string; cause?: unknown; notSent?: boolean } = {},
  ) {
    const code = kind === 'invalid-token' ? 'E_TOKEN_INVALID' : kind === 'forbidden' ? 'E_TOKEN_FORBIDDEN' : kind === 'transient' ? 'E_API_TRANSIENT' : 'E_API';
    super(code, message, { hint: opts.hint, cause: opts.cause });
    this.name = 'ApiError';
    this.kind = kind;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.notSent = opts.notSent === true;
  }

  get transient(): boolean {
    return this.kind === 'transient';
  }
}

/** What to do when the API refuses a token: the one recovery path there is. */
export function setTokenHint(fp: string, page = 'the Certorix web UI (MCP / API page)'): string {
  return `Regenerate the token in ${page}, then pipe it to \`mcp-token-rotator set-token --fingerprint ${fp}\` (it reads the new token from stdin).`;
}

export function isRotatorError(e: unknown): e is RotatorError {
  return e instanceof RotatorError;
}

/** Error text safe to show: never includes a cause's raw payload. */
export function errorMessage(e: unknown): string {
  if (e instanceof RotatorError) return e.describe();
  if (e instanceof Error) return e.message;
  return String(e);
}
