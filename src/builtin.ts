import { createRequire } from 'node:module';

/**
 * A Node built-in module, loaded now rather than at import: what only some runs need (TLS for
 * an https API, node:crypto for a fingerprint) is not carried by every process that imports
 * the code (the daemon idles all day; the exec wrapper sits beside every stdio server).
 * process.getBuiltinModule is in Node >= 20.16 and >= 22.3; 22.0-22.2 (which `engines`
 * allows) lack it, so createRequire stands in there.
 */
export function loadBuiltin<T>(id: `node:${string}`): T {
  const builtin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return (builtin ? builtin.call(process, id) : createRequire(import.meta.url)(id)) as T;
}
