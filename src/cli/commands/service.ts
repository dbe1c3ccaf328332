import path from 'node:path';
import { existsSync } from 'node:fs';
import { loadSettings } from '../../config/settings.js';
import { EXIT, RotatorError } from '../../errors.js';
import { currentPathEnv, expandHome, stateDir, statePaths, tildify } from '../../paths.js';
import {
  installService,
  shellJoin,
  serviceJson,
  uninstallService,
  SYSTEMD_UNIT,
  LAUNCHD_LABEL,
  type ServiceResult,
} from '../../service/service.js';
import type { Values } from '../commands.js';
import type { DisableResult } from '../../broker/disable.js';
import { err, out, printJson } from '../output.js';

function common(values: Values) {
  const pathEnv = currentPathEnv();
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const configFile = typeof values.config === 'string' ? path.resolve(expandHome(values.config, pathEnv.home)) : undefined;
  return { pathEnv, uid, configFile, dryRun: values['dry-run'] === true, json: values.json === true };
}

function warnIfRoot(uid: number, env: Record<string, string | undefined>): void {
  if (uid === 0 && env.SUDO_USER) {
    err(`warning: running as root (via sudo): this manages root's own service, not ${env.SUDO_USER}'s. Run it as your user, without sudo.`);
  }
}

function report(r: ServiceResult, json: boolean, extra: Record<string, unknown> = {}): number {
  for (const n of r.notes) err(`note: ${n}`);
  if (r.error) err(`error: ${r.error.describe()}`);
  if (json) {
    printJson({ ...serviceJson(r), ...extra });
    return r.error ? EXIT.failure : EXIT.ok;
  }
  const install = r.action === 'install';
  if (r.dryRun) {
    if (install) {
      out(`Would write ${r.unitPath} (mode 0644):`);
      out('-----');
      out((r.content ?? '').replace(/\n$/, ''));
      out('-----');
    } else {
      out(`Would remove ${r.unitPath}.`);
    }
    out(r.commands.length ? 'Would run:' : 'Would run no command.');
    for (const c of r.commands) out(`  ${shellJoin(c)}`);
    out('Nothing was written or run (--dry-run).');
    return EXIT.ok;
  }
  if (r.written) out(`Wrote ${r.unitPath}.`);
  if (r.removed) out(`Removed ${r.unitPath}.`);
  for (const o of r.ran) {
    const status = o.code === 0 ? 'ok' : o.tolerated ? `exit ${o.code}, ignored${o.stderr ? `: ${o.stderr.split('\n')[0]}` : ''}` : `exit ${o.code}`;
    out(`Ran: ${shellJoin(o.command)} (${status})`);
  }
  if (r.error) return EXIT.failure;
  if (install) {
    if (r.kind === 'systemd') {
      out(`The service is installed and running. Status: systemctl --user status ${SYSTEMD_UNIT}; logs: journalctl --user -u ${SYSTEMD_UNIT} -f`);
      out('It starts with your user session; to keep it running while you are logged out: loginctl enable-linger "$USER".');
    } else {
      out(`The agent is loaded and running. Status: launchctl print gui/$(id -u)/${LAUNCHD_LABEL}; logs: ~/Library/Logs/mcp-token-rotator/`);
    }
    out(`It runs ${process.execPath}; run "mcp-token-rotator install-service" again after moving or upgrading Node.js.`);
  } else {
    out(r.removed ? 'The service is stopped and removed.' : 'The service was not installed; nothing to remove.');
  }
  return EXIT.ok;
}

/** install-service [--dry-run] */
export async function runInstall(values: Values): Promise<number> {
  const c = common(values);
  warnIfRoot(c.uid, c.pathEnv.env);
  // A daemon started with bad settings would only crash-loop: check them now (throws E_SETTINGS).
  loadSettings({ pathEnv: c.pathEnv, ...(c.configFile ? { file: c.configFile } : {}) });
  const r = await installService({
    platform: c.pathEnv.platform,
    home: c.pathEnv.home,
    env: c.pathEnv.env,
    uid: c.uid,
    dryRun: c.dryRun,
    ...(c.configFile ? { configFile: c.configFile } : {}),
  });
  return report(r, c.json);
}

/**
 * The config files broker mode converted (empty when it is off or nothing was ever
 * recorded). Read without the settings: a bad settings file must not block a removal.
 */
async function convertedFiles(pathEnv: ReturnType<typeof currentPathEnv>): Promise<string[]> {
  const db = statePaths(stateDir(pathEnv)).db;
  if (!existsSync(db)) return [];
  const { Store } = await import('../../store/store.js');
  const { BrokerRegistry } = await import('../../broker/registry.js');
  const store = new Store(db);
  try {
    return [...new Set(new BrokerRegistry(store).entries().map((e) => e.path))];
  } finally {
    store.close();
  }
}

/** uninstall-service [--disable-broker] [--dry-run] */
export async function runUninstall(values: Values): Promise<number> {
  const c = common(values);
  warnIfRoot(c.uid, c.pathEnv.env);
  // Contract: removing the service (and then the tool) with broker mode on would leave
  // every converted client pointing at a dead endpoint or a deleted program.
  const files = await convertedFiles(c.pathEnv);
  if (files.length && values['disable-broker'] !== true) {
    const list = files.map((f) => tildify(f, c.pathEnv.home)).join(', ');
    throw new RotatorError('E_BROKER', `Broker mode is on: ${files.length} config file(s) run their Certorix entries through mcp-token-rotator (${list}). Without the service their endpoint entries cannot connect, and removing the tool afterwards would break every one of them.`, {
      hint: 'Run "mcp-token-rotator broker disable" first (it puts the current token back in those configs), or "mcp-token-rotator uninstall-service --disable-broker" to do both.',
    });
  }
  let disabled: DisableResult | undefined;
  if (files.length) {
    const { withContext } = await import('../session.js');
    const { reportDisable } = await import('./broker.js');
    disabled = await withContext(
      values,
      async (ctx) => {
        const { brokerDisable } = await import('../../broker/disable.js');
        const d = await brokerDisable(ctx, { dryRun: c.dryRun });
        // --json: one document, the disable result inside the service's.
        if (!c.json) reportDisable(d, false, ctx.pathEnv.home);
        return d;
      },
      { recover: !c.dryRun },
    );
    if (disabled.problems.length) {
      if (c.json) {
        printJson({ action: 'uninstall', brokerDisable: disabled });
        for (const p of disabled.problems) err(`error: ${p.message}${p.hint ? `\n  -> ${p.hint}` : ''}`);
      }
      err('error: the service stays installed: "broker disable" did not restore every entry. Fix that, then run "mcp-token-rotator uninstall-service" again.');
      return EXIT.failure;
    }
  }
  const r = await uninstallService({
    platform: c.pathEnv.platform,
    home: c.pathEnv.home,
    env: c.pathEnv.env,
    uid: c.uid,
    dryRun: c.dryRun,
  });
  return report(r, c.json, disabled ? { brokerDisable: disabled } : {});
}
