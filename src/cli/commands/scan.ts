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
    if (values.json) {
      printJson(report);
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
