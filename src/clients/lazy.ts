import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import type * as TomlModule from 'smol-toml';

/**
 * The YAML and TOML parsers load on first use: most machines have no YAML or TOML config,
 * and `yaml` alone costs the daemon 8 MiB of resident memory.
 */
const req = createRequire(import.meta.url);
let yamlMod: typeof YamlModule | undefined;
let tomlMod: typeof TomlModule | undefined;

export function yaml(): typeof YamlModule {
  return (yamlMod ??= req('yaml') as typeof YamlModule);
}

export function toml(): typeof TomlModule {
  return (tomlMod ??= req('smol-toml') as typeof TomlModule);
}
