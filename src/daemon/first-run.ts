/**
 * What the daemon says at start when it found no token: where it looked and what to do
 * next, instead of a bare "tokens: 0" that leaves a new user guessing. Pure.
 */
import { CATALOG } from '../clients/catalog.js';
import { tildify, type PathEnv } from '../paths.js';

export interface NoTokenAdvice {
  msg: string;
  /** Every config path checked (the catalog for this OS, then the extraConfigs patterns), `~` for HOME. */
  looked: string[];
}

export function noTokenAdvice(pe: PathEnv, settings: { extraConfigs: string[]; disableClients: string[] }): NoTokenAdvice {
  const disabled = new Set(settings.disableClients);
  const looked = [
    ...new Set([
      ...CATALOG.filter((c) => !disabled.has(c.id)).flatMap((c) => c.paths(pe).map((p) => tildify(p, pe.home))),
      ...settings.extraConfigs,
    ]),
  ];
  return {
    msg:
      `no Certorix token found in the ${looked.length} config paths checked (see "looked"). ` +
      'Next: put your token in an MCP client config ("CERTORIX_API_TOKEN" in a server\'s "env", or an "Authorization: Bearer" header ' +
      'to the Certorix server), or add the file to "extraConfigs" in the settings; the daemon watches these paths and picks it up. ' +
      'To see a whole cycle first, against a fake API: npm run demo',
    looked,
  };
}
