import { UsageError } from '../../errors.js';
import { tildify } from '../../paths.js';
import type { EnableResult } from '../../broker/enable.js';
import type { DisableResult } from '../../broker/disable.js';
import type { BrokerStatus } from '../../broker/status.js';
import type { Values } from '../commands.js';
import { err, out, printJson, table } from '../output.js';
import { withContext } from '../session.js';

/** broker enable | disable | status [--dry-run]: see src/broker/. */
export async function run(values: Values, positionals: string[] = []): Promise<number> {
  const [sub, ...extra] = positionals;
  if (sub === undefined) throw new UsageError('broker needs a subcommand: enable, disable or status.');
  if (extra.length) throw new UsageError(`broker ${sub}: unexpected argument "${extra[0] ?? ''}".`);
  const dryRun = values['dry-run'] === true;
  if (sub === 'status') {
    if (dryRun) throw new UsageError('broker status changes nothing; --dry-run is for enable and disable.');
    return withContext(values, async (ctx) => {
      const { brokerStatus } = await import('../../broker/status.js');
      const st = await brokerStatus(ctx);
      if (values.json) printJson(st);
      else out(renderStatus(st, ctx.pathEnv.home));
      return st.endpoint.entries > 0 && st.endpoint.up === false ? 2 : 0;
    });
  }
  if (sub === 'enable') {
    return withContext(
      values,
      async (ctx) => {
        const { brokerEnable } = await import('../../broker/enable.js');
        const r = await brokerEnable(ctx, { dryRun });
        reportEnable(r, values.json === true, ctx.pathEnv.home);
        return r.problems.length ? 2 : 0;
      },
      { recover: !dryRun },
    );
  }
  if (sub === 'disable') {
    return withContext(
      values,
      async (ctx) => {
        const { brokerDisable } = await import('../../broker/disable.js');
        const r = await brokerDisable(ctx, { dryRun });
        reportDisable(r, values.json === true, ctx.pathEnv.home);
        return r.problems.length ? 2 : 0;
      },
      { recover: !dryRun },
    );
  }
  throw new UsageError(`Unknown broker subcommand "${sub}": use enable, disable or status.`);
}

function reportEnable(r: EnableResult, json: boolean, home: string): void {
  if (json) printJson(r);
  const say = json ? err : out;
  for (const n of r.notes) say(`note: ${n}`);
  const verb = r.dryRun ? 'Would convert' : 'Converted';
  if (r.converted.length) {
    say(`${verb} ${r.converted.length} entr${r.converted.length === 1 ? 'y' : 'ies'} in ${r.files.length} file(s); the token${r.dryRun ? ' would live' : ' lives'} in the ${r.store.backend} store (${tildify(r.store.where, home)}):`);
    for (const e of r.converted) say(`  ${tildify(e.path, home)}  ${e.server}  ${e.mode}  (token ${e.fingerprint}, slot ${e.slot ?? '?'})`);
    if (!r.dryRun) say('Restart (or reconnect) the clients once so they start the converted entries; after that, rotations need no restart.');
    // Those clients cannot connect at all while the daemon is down: say so where they are converted.
    if (!r.dryRun && r.converted.some((e) => e.mode === 'broker-endpoint')) {
      say('The broker-endpoint entries reach their server through the daemon: keep it running ("mcp-token-rotator install-service" starts it at login and restarts it).');
    }
  } else if (!r.problems.length) say('Nothing to convert: no entry holds a plaintext Certorix token that the broker can take.');
  if (r.plaintext.length) {
    say('Staying plaintext (rotated as before):');
    for (const e of r.plaintext) say(`  ${tildify(e.path, home)}  ${e.server || '-'}  (token ${e.fingerprint}): ${e.reason ?? ''}`);
  }
  for (const p of r.problems) err(`error: ${p.message}${p.hint ? `\n  -> ${p.hint}` : ''}`);
  if (r.dryRun) say('Dry run: nothing was written.');
}

export function reportDisable(r: DisableResult, json: boolean, home: string): void {
  if (json) printJson(r);
  const say = json ? err : out;
  for (const n of r.notes) say(`note: ${n}`);
  if (r.restored.length) {
    say(`${r.dryRun ? 'Would restore' : 'Restored'} ${r.restored.length} entr${r.restored.length === 1 ? 'y' : 'ies'} to plaintext with the current token:`);
    for (const e of r.restored) say(`  ${tildify(e.path, home)}  ${e.server}  (token ${e.fingerprint})${e.exact ? '' : '  [edited since enable: restored from its current form, check it]'}`);
    if (!r.dryRun) say('Restart (or reconnect) the clients so they use the plaintext entries.');
  } else if (!r.problems.length) say('No converted entry: broker mode is off.');
  for (const p of r.problems) err(`error: ${p.message}${p.hint ? `\n  -> ${p.hint}` : ''}`);
  if (r.dryRun) say('Dry run: nothing was written.');
}

export function renderStatus(st: BrokerStatus, home: string): string {
  const lines: string[] = [];
  lines.push(`Token store: ${st.store.backend} (${tildify(st.store.where, home)})`);
  const ep = st.endpoint;
  const up = ep.up === null ? 'not checked' : ep.up ? 'up' : 'DOWN';
  lines.push(`Local endpoint: ${ep.port === null ? 'no port chosen yet' : `127.0.0.1:${ep.port}`}, ${up}; daemon ${ep.daemon ? 'running' : 'not running'}, service ${ep.service ? 'active' : 'not active'}; ${ep.entries} entr(ies) use it`);
  if (ep.entries > 0 && ep.up === false) lines.push('  -> Clients using the endpoint cannot connect: start the daemon, or run "mcp-token-rotator install-service".');
  lines.push('');
  if (!st.entries.length) lines.push('No entry holds a Certorix token.');
  else
    lines.push(
      table(
        ['FILE', 'SERVER', 'MODE', 'TOKEN', 'NOTE'],
        st.entries.map((e) => [tildify(e.path, home), e.server || '-', e.mode, e.fingerprint, e.mode === 'plaintext' ? (e.reason ?? '') : e.state === 'ok' ? '' : (e.state ?? '')]),
      ),
    );
  return lines.join('\n');
}
