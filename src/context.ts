import { loadSettings, type Settings } from './config/settings.js';
import { createLogger, type Logger } from './log.js';
import { currentPathEnv, stateDir, statePaths, type PathEnv, type StatePaths } from './paths.js';
import { Store } from './store/store.js';
import { Journal } from './store/journal.js';
import { setLocateDefaults } from './clients/locate-defaults.js';
import type { Provider, ProviderClient } from './providers/types.js';
import { providerModule, type ProviderModule } from './providers/index.js';
import { certorix } from './providers/certorix/index.js';
import { RotatorError, setTokenHint } from './errors.js';

export interface ContextOptions {
  configFile?: string;
  pathEnv?: PathEnv;
  logger?: Logger;
  /** Injected by tests: the Certorix client; otherwise the one for settings.apiUrl. */
  provider?: Provider;
  now?: () => Date;
}

/** What every command needs, built once per process; the store opens lazily. */
export class Context {
  readonly pathEnv: PathEnv;
  #settings: Settings;
  readonly settingsFile: string;
  readonly #configFile: string | undefined;
  readonly #providerInjected: boolean;
  readonly paths: StatePaths;
  #log: Logger | undefined;
  readonly now: () => Date;
  #store: Store | undefined;
  #journal: Journal | undefined;
  #provider: Provider | undefined;
  /** One client per provider and API base ("name\0base"); Certorix's default one is #provider. */
  readonly #clients = new Map<string, Promise<ProviderClient>>();

  constructor(opts: ContextOptions = {}) {
    this.pathEnv = opts.pathEnv ?? currentPathEnv();
    this.#configFile = opts.configFile;
    const loaded = loadSettings({ ...(opts.configFile ? { file: opts.configFile } : {}), pathEnv: this.pathEnv });
    this.#settings = loaded.settings;
    this.settingsFile = loaded.file;
    // Every locate in this process (scan, preflight, edit checks, read-back) sees the same hosts.
    setLocateDefaults({ mcpHosts: this.settings.mcpHosts, providers: this.settings.providers });
    this.paths = statePaths(stateDir(this.pathEnv));
    this.#log = opts.logger;
    this.now = opts.now ?? (() => new Date());
    this.#provider = opts.provider;
    this.#providerInjected = opts.provider !== undefined;
  }

  get settings(): Settings {
    return this.#settings;
  }

  /**
   * The daemon's SIGHUP: read the settings file again. A bad file throws (SettingsError)
   * and the settings in force stay; a changed API URL or timeout gets a new HTTP client.
   */
  async reloadSettings(): Promise<Settings> {
    const loaded = loadSettings({ ...(this.#configFile ? { file: this.#configFile } : {}), pathEnv: this.pathEnv });
    const before = this.#settings;
    this.#settings = loaded.settings;
    // The locators read mcpHosts from a module default set once per settings load.
    setLocateDefaults({ mcpHosts: loaded.settings.mcpHosts, providers: loaded.settings.providers });
    if (!this.#providerInjected && (before.apiUrl !== loaded.settings.apiUrl || before.requestTimeoutMs !== loaded.settings.requestTimeoutMs)) {
      const old = this.#provider;
      this.#provider = undefined;
      await old?.close().catch(() => undefined);
    }
    if (before.requestTimeoutMs !== loaded.settings.requestTimeoutMs || JSON.stringify(before.apiUrls) !== JSON.stringify(loaded.settings.apiUrls)) {
      const old = [...this.#clients.values()];
      this.#clients.clear();
      await Promise.all(old.map((c) => c.then((x) => x.close()).catch(() => undefined)));
    }
    return loaded.settings;
  }

  /** CLI commands log errors only (their messages are for humans); the daemon passes its own. */
  get log(): Logger {
    this.#log ??= createLogger({ destination: 'stderr', level: process.env.MCP_TOKEN_ROTATOR_LOG_LEVEL ?? 'error' });
    return this.#log;
  }

  get store(): Store {
    this.#store ??= new Store(this.paths.db);
    return this.#store;
  }

  get journal(): Journal {
    this.#journal ??= new Journal(this.store);
    return this.#journal;
  }

  /** The Certorix client at settings.apiUrl. */
  async provider(): Promise<Provider> {
    if (!this.#provider) {
      const { createCertorixProvider } = await import('./providers/certorix/api.js');
      this.#provider = createCertorixProvider({ apiUrl: this.settings.apiUrl, timeoutMs: this.settings.requestTimeoutMs });
    }
    return this.#provider;
  }

  /**
   * The API base a token of `name` is sent to: the entry's own base when the provider takes
   * one (GitLab), else settings/env, else the provider's default. Checked (https, or http on
   * loopback) by the client before any token is sent.
   */
  apiBaseFor(name: string, entryApiUrl?: string | null): string {
    const m = providerModule(name);
    if (!m) throw new RotatorError('E_ROTATION', `Unknown provider "${name}" recorded for a token.`, { hint: 'Run "mcp-token-rotator scan" to record the tokens again.' });
    return m.apiBase({ entryApiUrl: entryApiUrl ?? null, settings: this.settings });
  }

  /**
   * The client of a recorded token's own provider at its own base (the provider and base
   * its entry gave it at the last scan). A token never recorded is Certorix's, as before
   * providers existed (every caller records the scan first).
   */
  async clientForToken(fp: string): Promise<ProviderClient> {
    const row = this.store.getToken(fp);
    return this.client(row?.provider ?? 'certorix', row?.apiUrl ?? null);
  }

  /** The provider module of a recorded token (Certorix for one never recorded). */
  providerOfToken(fp: string): ProviderModule {
    const row = this.store.getToken(fp);
    return providerModule(row?.provider ?? 'certorix') ?? certorix;
  }

  /** The web page where the user makes a new token for this one (GitHub's per host). */
  tokenPageFor(fp: string): string {
    const row = this.store.getToken(fp);
    const m = this.providerOfToken(fp);
    return m.tokenPage(m.apiBase({ entryApiUrl: row?.apiUrl ?? null, settings: this.settings }));
  }

  /** The one recovery path for a token the API refuses (or that cannot rotate), with its own page. */
  setTokenHintFor(fp: string): string {
    return setTokenHint(fp, this.tokenPageFor(fp));
  }

  /** The client of a provider (by a token's recorded provider, never by a guess). */
  async client(name: string, entryApiUrl?: string | null): Promise<ProviderClient> {
    if (name === 'certorix') return this.provider();
    const m = providerModule(name);
    const base = this.apiBaseFor(name, entryApiUrl);
    const key = `${name}\0${base}`;
    let c = this.#clients.get(key);
    if (!c) {
      c = (m as NonNullable<typeof m>).createClient({ apiUrl: base, timeoutMs: this.settings.requestTimeoutMs });
      this.#clients.set(key, c);
      c.catch(() => this.#clients.delete(key));
    }
    return c;
  }

  nowIso(): string {
    return this.now().toISOString();
  }

  async close(): Promise<void> {
    await this.#provider?.close().catch(() => undefined);
    await Promise.all([...this.#clients.values()].map((c) => c.then((x) => x.close()).catch(() => undefined)));
    this.#clients.clear();
    this.#store?.close();
  }
}
