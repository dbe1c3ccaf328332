/**
 * `doctor`: what is unsafe. Each check is a pure evaluation (facts in, findings out, table
 * tested) with a thin layer of I/O around it that gathers the facts: file modes, git state,
 * the store, a TLS handshake with the API. No finding ever carries a token value, only
 * fingerprints.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { checkApiProbe, checkApiUrl, probeApi, type ProbeResult } from './api.js';
import { checkConfigMode, checkDirectory, checkStateDir, readStateEntries, type DirFacts } from './files.js';
import type { Finding, Severity } from './finding.js';
import { checkGit, gitFacts } from './git.js';
import { checkRetiredInConfig, checkRetiredPlanted, checkTokenRole, checkTokenState, type TokenFacts } from './tokens.js';
import { checkDiskEncryption, diskEncryption, type EncryptionFacts } from './disk.js';
import { minAgeDays } from '../rotation/policy.js';
import { Exposures } from '../store/exposures.js';
import { checkExposure, recordExposures } from './exposure.js';

export * from './finding.js';
export * from './files.js';
export * from './git.js';
export * from './tokens.js';
export * from './api.js';
export * from './disk.js';
export * from './exposure.js';

export function doctorExitCode(findings: Finding[]): 0 | 2 {
  return findings.some((f) => f.severity === 'danger') ? 2 : 0;
}

export function summarize(findings: Finding[]): { danger: number; warn: number; ok: number } {
  const s = { danger: 0, warn: 0, ok: 0 };
  for (const f of findings) s[f.severity]++;
  return s;
}

const RANK: Record<Severity, number> = { danger: 0, warn: 1, ok: 2 };

/** Worst first; the order within a severity is the order of the checks. Keys in one order. */
export function sortFindings(findings: Finding[]): Finding[] {
  return findings
    .map((f, i) => [f, i] as const)
    .sort((a, b) => RANK[a[0].severity] - RANK[b[0].severity] || a[1] - b[1])
    .map(([f]) => ({
      id: f.id,
      severity: f.severity,
      ...(f.file !== undefined ? { file: f.file } : {}),
      ...(f.fingerprint !== undefined ? { fingerprint: f.fingerprint } : {}),
      message: f.message,
      fix: f.fix,
    }));
}

export interface DoctorOptions {
  offline: boolean;
  git?: string;
  /** Replaces the TLS probe (tests). */
  probe?: (url: URL) => Promise<ProbeResult>;
  /** Replaces the disk encryption look (tests). */
  disk?: (home: string) => Promise<EncryptionFacts>;
}

/**
 * Gathers every finding, worst first. Order matters: the state directory is looked at
 * before the store is opened, because opening it tightens the modes it would report.
 */
export async function runDoctor(ctx: Context, opts: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const posix = ctx.pathEnv.platform !== 'win32';
  const home = ctx.pathEnv.home;

  // 1. State directory (before ctx.store touches it).
  if (posix) findings.push(...checkStateDir(ctx.paths.dir, await readStateEntries(ctx.paths.dir)));

  // 2. A fresh offline discovery, recorded, plus what the store already knew.
  const { findTokens, recordScan } = await import('../scan.js');
  const scan = await findTokens(ctx);
  recordScan(ctx, scan);
  for (const c of scan.configs) {
    if (c.status === 'error' && c.error) {
      findings.push({
        id: 'config-unreadable',
        severity: 'warn',
        file: c.candidate.path,
        message: c.error.message,
        fix: c.error.hint ?? `Check ${c.candidate.path}.`,
      });
    }
  }
  const byFile = new Map<string, Set<string>>();
  const add = (file: string, fp: string) => {
    let s = byFile.get(file);
    if (!s) byFile.set(file, (s = new Set()));
    s.add(fp);
  };
  for (const l of ctx.store.listLocations()) add(l.path, l.fingerprint);
  for (const [fp, t] of scan.tokens) for (const s of t.sites) add(s.path, fp);

  // 3. Per config: mode of the real file, directories on the way, git.
  const dirs = new Map<string, DirFacts>();
  const seenReal = new Set<string>();
  for (const [file, fpSet] of [...byFile].sort(([a], [b]) => a.localeCompare(b))) {
    const fingerprints = [...fpSet].sort();
    let real: string;
    let mode: number;
    try {
      real = await realpath(file);
      mode = (await stat(real)).mode;
    } catch {
      continue; // gone since it was recorded
    }
    if (seenReal.has(real)) continue;
    seenReal.add(real);
    if (posix) {
      findings.push(checkConfigMode({ file, realPath: real, mode, fingerprints }));
      for (let d = path.dirname(real), first = true; ; first = false) {
        let facts = dirs.get(d);
        if (!facts) {
          const st = await stat(d).catch(() => null);
          if (st) dirs.set(d, (facts = { dir: d, mode: st.mode, files: [], direct: false }));
        }
        if (facts) {
          facts.files.push(file);
          facts.direct ||= first;
        }
        const parent = path.dirname(d);
        if (parent === d) break;
        d = parent;
      }
    }
    const gf = await gitFacts(real, home, { ...(opts.git ? { git: opts.git } : {}) });
    // Only tokens the file holds now: a recorded location the file no longer has is not exposed there.
    const held = scan.tokens.size ? fingerprints.filter((fp) => scan.tokens.get(fp)?.sites.some((s) => s.path === file)) : [];
    recordExposures(ctx, file, { mode: posix ? mode : null, git: gf, fingerprints: held });
    const g = checkGit(real, fingerprints, gf);
    if (g) findings.push(file !== real ? { ...g, file, message: `${g.message} (${file} is a symlink to it)` } : g);
  }
  for (const d of dirs.values()) {
    const f = checkDirectory(d);
    if (f) findings.push(f);
  }

  // 4. Tokens: role, validity, age; retired tokens still in a config.
  const { buildStatus } = await import('../status.js');
  const now = ctx.now();
  for (const t of buildStatus(ctx)) {
    const row = ctx.store.getToken(t.fingerprint);
    const facts: TokenFacts = {
      fingerprint: t.fingerprint,
      role: t.role,
      state: t.state,
      ageDays: t.ageDays,
      ...(row ? { minAgeDays: minAgeDays(row, now) } : {}),
      files: t.locations.map((l) => l.path),
      // Certorix's findings read as before; other providers name themselves and their page.
      ...(t.provider !== 'certorix' ? { provider: t.provider, label: ctx.providerOfToken(t.fingerprint).label, page: ctx.tokenPageFor(t.fingerprint), tokenKind: row?.tokenKind ?? null, expiresAt: t.expiresAt } : {}),
    };
    const role = checkTokenRole(facts);
    if (role) findings.push(role);
    findings.push(checkTokenState(facts, ctx.settings.warnAfterDays));
  }
  // Retired tokens still in configs: healable ones (the daemon puts the current token back),
  // and the others, which the daemon leaves alone and warns about (possibly planted).
  const { describeRefusal, healFacts, healVerdict } = await import('../rotation/heal.js');
  for (const [fp, t] of scan.tokens) {
    if (ctx.store.getToken(fp)?.state !== 'retired') continue;
    const successor = ctx.store.currentSuccessor(fp);
    const healable: string[] = [];
    const refusedAt = new Map<string, string>();
    for (const e of ctx.store.listEvents({ fingerprint: fp, limit: 1000 })) if (e.type === 'heal-refused') for (const f of e.files) refusedAt.set(f, e.at);
    for (const hf of await healFacts(ctx, fp, [...new Set(t.sites.map((s) => s.path))])) {
      const v = healVerdict(hf);
      if (v.heal) healable.push(hf.file);
      else {
        const d = describeRefusal(fp, successor, hf.file, v);
        findings.push(checkRetiredPlanted(fp, hf.file, d.message, d.fix, refusedAt.get(hf.file) ?? null));
      }
    }
    if (healable.length) findings.push(checkRetiredInConfig(fp, successor, healable));
  }

  // Exposures recorded earlier (by doctor or broker enable) of tokens still in use, where
  // the file no longer holds them: the git history or another user's copy still does.
  const exposures = new Exposures(ctx.store);
  for (const e of exposures.list()) {
    const state = ctx.store.getToken(e.fingerprint)?.state;
    if (state === undefined || state === 'retired') {
      exposures.forget(e.fingerprint);
      continue;
    }
    const stillInFile = scan.tokens.get(e.fingerprint)?.sites.some((s) => s.path === e.path) ?? false;
    const f = checkExposure(e, { retired: false, stillInFile });
    if (f) findings.push(f);
  }

  findings.push(...(await (await import('../broker/doctor.js')).brokerFindings(ctx, scan)));

  // 5. The API.
  const api = checkApiUrl(ctx.settings.apiUrl, ctx.settingsFile);
  if (api.finding) findings.push(api.finding);
  if (api.parsed && !opts.offline) {
    const probe = opts.probe ?? ((u: URL) => probeApi(u, { timeoutMs: ctx.settings.requestTimeoutMs }));
    findings.push(checkApiProbe(api.parsed, await probe(api.parsed), ctx.settingsFile));
  }

  // 6. The disk under the configs.
  findings.push(checkDiskEncryption(home, await (opts.disk ?? diskEncryption)(home), ctx.pathEnv.platform));
  return sortFindings(findings);
}
