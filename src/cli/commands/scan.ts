import { runScan } from '../../scan.js';
import { tildify } from '../../paths.js';
import { termSafe } from '../../terminal.js';
import type { Values } from '../commands.js';
import { err, out, printJson } from '../output.js';
import { withContext } from '../session.js';
import { renderTokens } from './status.js';

export async function run(values: Values): Promise<number> {
  return withContext(values, async (ctx) => {
    const report = await runScan(ctx, { network: values.offline !== true });
    for (const w of report.warnings) err(`warning: ${w}`);
    const broken = report.configs.filter((c) => c.status === 'error');
    for (const c of broken) err(`error: ${c.error}${c.hint ? `\n  -> ${c.hint}` : ''}`);
    // Nothing found: say where it looked, so "no token" is not a dead end.
    const looked = report.tokens.length === 0 ? (await import('../../daemon/first-run.js')).noTokenAdvice(ctx.pathEnv, ctx.settings).looked : null;
    if (values.json) {
      printJson(looked ? { ...report, looked } : report);
    } else if (looked) {
      const home = ctx.pathEnv.home;
      const found = report.configs.map((c) => `  ${termSafe(tildify(c.path, home))}  [${c.client}]  ${c.status === 'error' ? 'ERROR (see above)' : 'no Certorix token'}`);
      if (found.length) out(`Configs found: ${found.length}\n${found.join('\n')}\n`);
      out(`No Certorix token found. Checked these ${looked.length} files and patterns:`);
      for (const p of looked) out(`  ${termSafe(p)}`);
      out();
      out('Next: put your token in an MCP client config ("CERTORIX_API_TOKEN" in a server\'s "env", or an "Authorization: Bearer" header to the Certorix server),');
      out('or add the file to "extraConfigs" in the settings (docs/settings.md), then run "mcp-token-rotator scan" again.');
    } else {
      const home = ctx.pathEnv.home;
      out(`Configs found: ${report.configs.length}`);
      for (const c of report.configs) {
        const what = c.status === 'error' ? 'ERROR (see above)' : c.tokens.length ? `tokens ${c.tokens.join(', ')}` : 'no Certorix token';
        out(`  ${termSafe(tildify(c.path, home))}  [${c.client}]  ${what}`);
      }
      out();
      out(renderTokens(report.tokens, home));
    }
    return broken.length ? 2 : 0;
  });
}
