import path from 'node:path';
import { loadSettings } from '../../config/settings.js';
import { EXIT } from '../../errors.js';
import { currentPathEnv, expandHome } from '../../paths.js';
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

function report(r: ServiceResult, json: boolean): number {
  for (const n of r.notes) err(`note: ${n}`);
  if (r.error) err(`error: ${r.error.describe()}`);
  if (json) {
    printJson(serviceJson(r));
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

/** uninstall-service [--dry-run] */
export async function runUninstall(values: Values): Promise<number> {
  const c = common(values);
  warnIfRoot(c.uid, c.pathEnv.env);
  const r = await uninstallService({
    platform: c.pathEnv.platform,
    home: c.pathEnv.home,
    env: c.pathEnv.env,
    uid: c.uid,
    dryRun: c.dryRun,
  });
  return report(r, c.json);
}
