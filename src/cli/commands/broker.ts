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
  const rotate = values.rotate === true;
  if (rotate && sub !== 'enable') throw new UsageError(`--rotate is for "broker enable" (it rotates the tokens enable converted), not "broker ${sub}".`);
  if (rotate && dryRun) throw new UsageError('broker enable --rotate --dry-run: a dry run rotates nothing; drop one of them.');
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
    const json = values.json === true;
    let home = '';
    const r = await withContext(
      values,
      async (ctx) => {
        home = ctx.pathEnv.home;
        const { brokerEnable } = await import('../../broker/enable.js');
        return brokerEnable(ctx, { dryRun });
      },
      { recover: !dryRun },
    );
    // With --rotate the JSON document also carries the rotations: printed once, at the end.
    reportEnable(r, json, home, { rotate, printDoc: !rotate });
    const code = r.problems.length ? 2 : 0;
    if (!rotate) return code;
    const fps = [...new Set(r.converted.map((c) => c.fingerprint))].sort();
    if (!fps.length) {
      if (json) printJson({ ...r, rotations: [] });
      else out('Nothing was converted, so nothing to rotate.');
      return code;
    }
    // Through the daemon when it runs (one writer), as "rotate" does; the wrappers and the
    // endpoint carry the clients over, so none of them notices.
    const [{ mutate }, { rotateOp }, { report }] = await Promise.all([import('../mutate.js'), import('../../operations.js'), import('./rotate.js')]);
    const rot = await mutate(values, { method: 'rotate', params: { fingerprints: fps } }, (c) => rotateOp(c, { fingerprints: fps, source: 'manual' }));
    if (json) printJson({ ...r, rotations: rot.res.rotations, ...(rot.res.warnings.length ? { warnings: rot.res.warnings } : {}) });
    // In JSON mode the document carries the rotations; the human report is for a terminal.
    if (!json) {
      for (const w of rot.res.warnings) err(`warning: ${w}`);
      if (rot.res.rotations.length) report(rot.res, false, false, home);
    }
    const ok = !rot.res.warnings.length && rot.res.rotations.length > 0 && rot.res.rotations.every((x) => x.status === 'rotated');
    return ok ? code : 2;
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

function reportEnable(r: EnableResult, json: boolean, home: string, opts: { rotate: boolean; printDoc: boolean }): void {
  if (json && opts.printDoc) printJson(r);
  const say = json ? err : out;
  for (const n of r.notes) say(`note: ${n}`);
  const verb = r.dryRun ? 'Would convert' : 'Converted';
  if (r.converted.length) {
    say(`${verb} ${r.converted.length} entr${r.converted.length === 1 ? 'y' : 'ies'} in ${r.files.length} file(s); the token${r.dryRun ? ' would live' : ' lives'} in the ${r.store.backend} store (${tildify(r.store.where, home)}):`);
    for (const e of r.converted) say(`  ${tildify(e.path, home)}  ${e.server}  ${e.mode}  (token ${e.fingerprint}, slot ${e.slot ?? '?'})`);
    if (r.store.reason) say(`The OS keychain is not used, because ${r.store.reason}; the 0600 file protects the tokens by its permissions only.\n  -> ${r.store.fix ?? ''}`);
    if (!r.dryRun) {
      say(
        opts.rotate
          ? 'Restart (or reconnect) the clients once so they start the converted entries (until then they hold the old token, which --rotate now retires); after that, rotations need no restart.'
          : 'Restart (or reconnect) the clients once so they start the converted entries; after that, rotations need no restart.',
      );
    }
    if (!r.dryRun && !opts.rotate) {
      // The token value is unchanged: every plaintext copy made until now still works.
      const fps = [...new Set(r.converted.map((c) => c.fingerprint))].sort();
      say(
        `The old plaintext copies of token${fps.length === 1 ? '' : 's'} ${fps.join(', ')} still work (config backups, the git history of a committed file, whoever could read those files) until ${fps.length === 1 ? 'it is' : 'they are'} rotated: run "mcp-token-rotator rotate${fps.length === 1 ? ` --fingerprint ${fps[0] ?? ''}` : ''}" now (broker mode is on, so running clients do not notice), or use "broker enable --rotate", which does both.`,
      );
    }
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
  const up = ep.stranger ? `HELD BY ANOTHER PROGRAM${ep.holderUid !== null ? ` (uid ${ep.holderUid})` : ''}, not the daemon` : ep.up === null ? 'not checked' : ep.up ? 'up' : 'DOWN';
  lines.push(`Local endpoint: ${ep.port === null ? 'no port chosen yet' : `127.0.0.1:${ep.port}`}, ${up}; daemon ${ep.daemon ? 'running' : 'not running'}, service ${ep.service ? 'active' : 'not active'}; ${ep.entries} entr(ies) use it`);
  if (ep.stranger) lines.push('  -> Clients using the endpoint send their requests and route secrets to that program: restart the daemon (it moves to a free port with new route secrets); see "mcp-token-rotator doctor".');
  else if (ep.entries > 0 && ep.up === false) lines.push('  -> Clients using the endpoint cannot connect: start the daemon, or run "mcp-token-rotator install-service".');
  if (ep.moved) lines.push(`  Moved at ${ep.moved.at}: port ${ep.moved.from} was held by another program${ep.moved.holderUid != null ? ` (uid ${ep.moved.holderUid})` : ''}; now ${ep.moved.to}, with new route secrets.`);
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
