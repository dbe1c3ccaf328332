/**
 * The locate options of this process's settings, apart from the locators themselves so
 * that setting them (every command's context does, when the settings load) does not load
 * every parser: `status` must start fast and locates nothing.
 */
export interface LocateOptions {
  /**
   * Settings `mcpHosts`: more host names whose `Authorization: Bearer` values are Certorix
   * tokens, besides hosts under certorix.com.
   */
  mcpHosts?: readonly string[];
  /** Settings `providers`: `{ "<name>": false }` leaves a provider's tokens unseen. */
  providers?: Readonly<Partial<Record<string, boolean>>>;
}

/**
 * Every locate of a rotation (scan, preflight, the edit's own checks, read-back) must see
 * the same hosts, or a header found by the scan would vanish at the edit; the context sets
 * them once when the settings load.
 */
let processOptions: LocateOptions = {};

export function setLocateDefaults(opts: LocateOptions): void {
  processOptions = { mcpHosts: [...(opts.mcpHosts ?? [])], ...(opts.providers ? { providers: { ...opts.providers } } : {}) };
}

export function locateDefaults(): LocateOptions {
  return processOptions;
}
