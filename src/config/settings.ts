import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z as Zod } from 'zod';
import { SettingsError } from '../errors.js';
import { validateApiUrl } from '../api/url.js';
import type { ProviderName } from '../providers/types.js';
import { expandHome, settingsPath, stateDir, type PathEnv, currentPathEnv } from '../paths.js';

const DEFAULT_API_URL = 'https://api.certorix.com';
/**
 * Env overrides of the providers' API bases (GitLab's comes from each entry's own
 * GITLAB_API_URL instead, see src/providers/). Listed here, not read from the provider
 * modules, so loading settings does not load them.
 */
const PROVIDER_URL_ENV: ReadonlyArray<[Exclude<ProviderName, 'certorix'>, string]> = [
  ['github', 'GITHUB_API_URL'],
  ['cloudflare', 'CLOUDFLARE_API_URL'],
];

function buildSchema(z: typeof Zod) {
  const cronField = z.string().refine(isValidCron, { message: 'not a valid cron expression (5 or 6 fields in range, e.g. "0 10 * * 1-5")' });
  const globField = z
    .string()
    .min(1)
    .refine((g) => !g.includes('\0') && balanced(g), { message: 'not a valid glob (unbalanced brackets or braces)' });
  return z
    .object({
      apiUrl: z.string().default(DEFAULT_API_URL),
      warnAfterDays: z.number().int().positive().max(3650).default(90),
      /** Info-level heads-up this many days before warnAfterDays. */
      headsUpDays: z.number().int().nonnegative().max(365).default(7),
      extraConfigs: z.array(globField).default([]),
      hooks: z
        .object({
          postRotate: z.array(z.string().min(1)).default([]),
          timeoutMs: z.number().int().positive().max(600_000).default(60_000),
        })
        .strict()
        .default({ postRotate: [], timeoutMs: 60_000 }),
      autoRotate: z
        .object({
          afterDays: z.number().int().positive().max(3650).default(90),
          cron: cronField.default('0 10 * * 1-5'),
          /** Upper bound of the random delay before a scheduled rotation, so many laptops do not hit the API at once. */
          jitterSeconds: z.number().int().nonnegative().max(3600).default(300),
        })
        .strict()
        .optional(),
      notify: z.boolean().default(true),
      requestTimeoutMs: z.number().int().positive().max(300_000).default(15_000),
      retry: z
        .object({
          attempts: z.number().int().min(1).max(20).default(5),
          baseMs: z.number().int().nonnegative().max(60_000).default(500),
          maxMs: z.number().int().nonnegative().max(600_000).default(30_000),
        })
        .strict()
        .default({ attempts: 5, baseMs: 500, maxMs: 30_000 }),
      backupsToKeep: z.number().int().nonnegative().max(100).default(5),
      /** Catalog clients to skip, by id (e.g. "goose"). */
      disableClients: z.array(z.string()).default([]),
      /** More host names whose `Authorization: Bearer` values are Certorix tokens (besides *.certorix.com). */
      mcpHosts: z
        .array(
          z
            .string()
            .min(1)
            .max(253)
            .refine(isHostName, { message: 'a host name only (no scheme, port or path), e.g. "mcp.example.com", "127.0.0.1" or "::1"' }),
        )
        .default([]),
      /** Warn (and call a token due) this many days before it expires, where the provider tells expiry. */
      warnBeforeExpiryDays: z.number().int().nonnegative().max(365).default(14),
      /** Providers to leave alone: `{ "github": false }`. */
      providers: z
        .object({ certorix: z.boolean().optional(), github: z.boolean().optional(), gitlab: z.boolean().optional(), cloudflare: z.boolean().optional() })
        .strict()
        .default({}),
      /** API bases of the providers other than Certorix (whose base is `apiUrl`); env GITHUB_API_URL, CLOUDFLARE_API_URL override. */
      apiUrls: z
        .object({ github: z.string().optional(), gitlab: z.string().optional(), cloudflare: z.string().optional() })
        .strict()
        .default({}),
      /**
       * A Prometheus text-format file the daemon keeps up to date (node_exporter's textfile
       * collector, e.g. "/var/lib/node_exporter/textfile/mcp-token-rotator.prom"); `~` expanded.
       */
      metricsFile: z
        .string()
        .min(1)
        .refine((p) => !p.includes('\0') && (p.startsWith('/') || p.startsWith('~/') || /^[A-Za-z]:[\\/]/.test(p)), { message: 'an absolute path (or one starting with "~/"), e.g. "/var/lib/node_exporter/textfile/mcp-token-rotator.prom"' })
        .optional(),
      /** Broker mode (opt-in): where the token lives and the local endpoint's port. */
      broker: z
        .object({
          store: z.enum(['auto', 'keychain', 'file']).default('auto'),
          /** Loopback port of the daemon's local endpoint; chosen at `broker enable` when unset. */
          port: z.number().int().min(1024).max(65535).optional(),
        })
        .strict()
        .default({ store: 'auto' }),
    })
    .strict();
}

export type SettingsSchema = ReturnType<typeof buildSchema>;
export type Settings = Zod.infer<SettingsSchema>;
export type SettingsInput = Zod.input<SettingsSchema>;

let schema: SettingsSchema | undefined;
/**
 * zod takes ~90 ms to load, a third of a fast command; it is loaded only when there is a
 * settings file to validate (the common no-file case uses DEFAULT_SETTINGS).
 */
export function settingsSchema(): SettingsSchema {
  if (!schema) {
    const { z } = createRequire(import.meta.url)('zod') as { z: typeof Zod };
    schema = buildSchema(z);
  }
  return schema;
}

/** What the schema yields for `{}`; a test keeps the two equal. */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  apiUrl: DEFAULT_API_URL,
  warnAfterDays: 90,
  headsUpDays: 7,
  extraConfigs: [],
  hooks: { postRotate: [], timeoutMs: 60_000 },
  notify: true,
  requestTimeoutMs: 15_000,
  retry: { attempts: 5, baseMs: 500, maxMs: 30_000 },
  backupsToKeep: 5,
  disableClients: [],
  mcpHosts: [],
  warnBeforeExpiryDays: 14,
  providers: {},
  apiUrls: {},
  broker: { store: 'auto' as const },
});

export interface ParsedSettings {
  settings: Settings | null;
  errors: string[];
  warnings: string[];
}

/**
 * Pure: JSON text (or undefined for "no file") and the environment in, settings or
 * field-level errors out. `CERTORIX_API_URL` overrides `apiUrl`.
 */
export function parseSettings(text: string | undefined, env: Record<string, string | undefined> = {}, cache?: SchemaCache): ParsedSettings {
  let raw: unknown = {};
  if (text !== undefined && text.trim() !== '') {
    try {
      raw = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (e) {
      return { settings: null, errors: [`not valid JSON: ${(e as Error).message}`], warnings: [] };
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { settings: null, errors: ['the file must hold a JSON object'], warnings: [] };
  }
  let settings: Settings;
  const cached = text !== undefined ? cache?.get(text) : undefined;
  if (Object.keys(raw).length === 0) settings = structuredClone(DEFAULT_SETTINGS) as Settings;
  else if (cached) settings = cached;
  else {
    const result = settingsSchema().safeParse(raw);
    if (!result.success) return { settings: null, errors: result.error.issues.map(formatIssue), warnings: [] };
    settings = result.data;
  }
  // What the file alone yields, cached below only if every check passes.
  const fromFile = cached ? undefined : structuredClone(settings);
  const errors: string[] = [];
  // The file's value is checked even when the environment overrides it: a bad file is a bad file.
  const check = (url: string, where: string) => {
    try {
      validateApiUrl(url);
    } catch (e) {
      errors.push(`${where}: ${(e as Error).message}`);
    }
  };
  check(settings.apiUrl, 'field "apiUrl"');
  const envUrl = env.CERTORIX_API_URL;
  if (envUrl && envUrl.trim() !== '') {
    settings.apiUrl = envUrl.trim();
    check(settings.apiUrl, 'CERTORIX_API_URL (environment)');
  }
  // The other providers' bases: the file's value, then the provider's own env variable.
  for (const [name, envName] of PROVIDER_URL_ENV) {
    const fileUrl = settings.apiUrls[name];
    if (fileUrl !== undefined) check(fileUrl, `field "apiUrls.${name}"`);
    const v = env[envName];
    if (v && v.trim() !== '') {
      settings.apiUrls = { ...settings.apiUrls, [name]: v.trim() };
      check(v.trim(), `${envName} (environment)`);
    }
  }
  if (settings.retry.maxMs < settings.retry.baseMs) errors.push('field "retry.maxMs": must be >= retry.baseMs');
  if (errors.length) return { settings: null, errors, warnings: [] };
  if (fromFile && text !== undefined && Object.keys(raw).length > 0) cache?.set(text, fromFile);
  return { settings, errors: [], warnings: [] };
}

/** Results of schema validation by file content, so a fast command need not load zod. */
export interface SchemaCache {
  get(text: string): Settings | undefined;
  set(text: string, settings: Settings): void;
}

/**
 * A validation cache in the state directory, keyed by the settings text and by this
 * module's build (a new schema invalidates it). Only valid files are cached; best effort.
 */
export function fileSchemaCache(dir: string): SchemaCache {
  const file = path.join(dir, 'settings-cache.json');
  const key = (text: string) => {
    let build = '';
    try {
      const st = statSync(fileURLToPath(import.meta.url));
      build = `${st.mtimeMs}:${st.size}`;
    } catch {
      /* bundled or virtual: the text alone */
    }
    return createHash('sha256').update(build).update('\0').update(text).digest('hex');
  };
  return {
    get(text) {
      try {
        const c = JSON.parse(readFileSync(file, 'utf8')) as { key: string; settings: Settings };
        return c.key === key(text) ? c.settings : undefined;
      } catch {
        return undefined;
      }
    },
    set(text, settings) {
      try {
        // The state directory is created as the store would create it (0700), so the very
        // next command already skips zod.
        if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(file, JSON.stringify({ key: key(text), settings }), { mode: 0o600 });
      } catch {
        /* a cache that cannot be written costs only speed */
      }
    },
  };
}

export interface LoadSettingsOptions {
  /** --config FILE; otherwise the per-OS default path. */
  file?: string;
  pathEnv?: PathEnv;
}

export interface LoadedSettings {
  settings: Settings;
  file: string;
  /** False when the default file does not exist (defaults are used). */
  exists: boolean;
}

/** Reads and validates the settings file; throws SettingsError naming the file and the bad fields. */
export function loadSettings(opts: LoadSettingsOptions = {}): LoadedSettings {
  const pe = opts.pathEnv ?? currentPathEnv();
  const file = opts.file ? expandHome(opts.file, pe.home) : settingsPath(pe);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // A missing default file means "use the defaults"; a missing --config file is a mistake.
    if (code === 'ENOENT' && !opts.file) text = undefined;
    else throw new SettingsError(file, [code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? 'error'})`]);
  }
  if (text !== undefined) {
    const trust = settingsTrustIssues(settingsPathFacts(file, pe), process.getuid?.() ?? -1, pe.platform);
    if (trust.issues.length) throw new SettingsError(file, trust.issues, trust.hint);
  }
  const parsed = parseSettings(text, pe.env, fileSchemaCache(stateDir(pe)));
  if (!parsed.settings) throw new SettingsError(file, parsed.errors);
  return { settings: parsed.settings, file, exists: text !== undefined };
}

/** What the trust decision needs to know about the settings file or one directory above it. */
export interface PathFacts {
  path: string;
  kind: 'file' | 'dir';
  mode: number;
  uid: number;
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Pure: whether the settings may be trusted. They decide where tokens are sent (`apiUrl`)
 * and which commands run (`hooks`), so a file that someone other than the user (or root)
 * could change, directly or by replacing a directory entry above it, is refused like an
 * invalid one. A sticky directory (/tmp) lets others add entries but not replace ours.
 * Windows has no such modes: nothing is checked there (its ACLs are the profile's).
 */
export function settingsTrustIssues(facts: PathFacts[], uid: number, platform: PathEnv['platform']): { issues: string[]; hint: string } {
  const issues: string[] = [];
  const fixes: string[] = [];
  if (platform === 'win32' || uid < 0) return { issues, hint: '' };
  for (const f of facts) {
    const what = f.kind === 'file' ? 'the settings file' : 'a directory above the settings file';
    if (f.uid !== uid && f.uid !== 0) {
      issues.push(`${what} ${f.path} is owned by another user (uid ${f.uid}; you are uid ${uid}), who could change where tokens are sent and which hooks run`);
      fixes.push(f.kind === 'file' ? `make your own copy (cp "${f.path}" ~/my-settings.json, then pass it with --config)` : `move the settings file out of ${f.path}`);
    }
    const sticky = f.kind === 'dir' && (f.mode & 0o1000) !== 0;
    if ((f.mode & 0o022) !== 0 && !sticky) {
      const who = (f.mode & 0o002) !== 0 ? 'world-writable' : 'group-writable';
      issues.push(`${what} ${f.path} is ${who} (mode ${octal(f.mode)}): others could change where tokens are sent and which hooks run`);
      fixes.push(f.kind === 'file' ? `chmod 600 "${f.path}"` : `chmod go-w "${f.path}"`);
    }
  }
  return { issues, hint: issues.length ? `Fix: ${fixes.join('; ')}; then run the command again. Settings only you can write are trusted.` : '' };
}

/**
 * The settings file (through a symlink, the file it points at) and every directory above
 * the path as given and above its real path, up to HOME (inclusive), or up to the root for
 * a file outside HOME. Paths that cannot be read are skipped: the read itself reports them.
 */
export function settingsPathFacts(file: string, pe: PathEnv): PathFacts[] {
  const out: PathFacts[] = [];
  const seen = new Set<string>();
  const add = (p: string, kind: PathFacts['kind']) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const st = statSync(p);
      out.push({ path: p, kind, mode: st.mode, uid: st.uid });
    } catch {
      /* gone or unreadable: nothing to judge */
    }
  };
  const homes = new Set([path.resolve(pe.home)]);
  try {
    homes.add(realpathSync(pe.home));
  } catch {
    /* no such HOME: walk to the root */
  }
  const walkUp = (from: string) => {
    for (let d = path.dirname(from); ; d = path.dirname(d)) {
      add(d, 'dir');
      if (homes.has(d) || path.dirname(d) === d) break;
    }
  };
  const abs = path.resolve(file);
  add(abs, 'file');
  walkUp(abs);
  let real = abs;
  try {
    if (lstatSync(abs).isSymbolicLink()) real = realpathSync(abs);
  } catch {
    /* the read reports it */
  }
  if (real !== abs) {
    add(real, 'file');
    walkUp(real);
  }
  return out;
}

function formatIssue(issue: Zod.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.map(String).join('.') : '(root)';
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys?: string[] }).keys ?? [];
    const prefix = issue.path.length ? `${field}.` : '';
    return keys.map((k) => `field "${prefix}${k}": unknown setting (check the spelling; see docs/settings.md)`).join('; ');
  }
  return `field "${field}": ${issue.message}`;
}

/** A bare host name or IP address as `mcpHosts` compares it with a URL's host: "https://x" or "x:8080" would never match. */
export function isHostName(h: string): boolean {
  const v = h.trim();
  if (/^\[?[0-9A-Fa-f:.]+\]?$/.test(v) && v.includes(':')) return true; // IPv6
  return /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(v) && !v.includes('..');
}

function balanced(g: string): boolean {
  let sq = 0;
  let br = 0;
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') sq++;
    else if (c === ']') sq--;
    else if (c === '{') br++;
    else if (c === '}') br--;
    if (sq < 0 || br < 0) return false;
  }
  return sq === 0 && br === 0;
}

/**
 * The daemon schedules with node-cron, so node-cron decides what is valid: a shape-only
 * check let "61 * * * *" through to crash the daemon at start instead of being reported
 * here with the file and field. Only reached when a settings file is validated (zod runs,
 * the result is cached), so a fast command never loads it.
 */
export function isValidCron(expr: string): boolean {
  if (!isPlausibleCron(expr)) return false;
  let validate: ((e: string) => boolean) | undefined;
  try {
    validate = (createRequire(import.meta.url)('node-cron') as { validate?: (e: string) => boolean }).validate;
  } catch {
    return true; // cannot load it here: the shape check stands
  }
  try {
    return validate ? validate(expr) === true : true;
  } catch {
    return false;
  }
}

/** The shape of a cron expression: 5 or 6 fields of the allowed characters. */
export function isPlausibleCron(expr: string): boolean {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) return false;
  return fields.every((f) => /^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(\/\d+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(\/\d+)?)*$/.test(f));
}
