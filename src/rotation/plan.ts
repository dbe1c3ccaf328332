import { randomBytes } from 'node:crypto';
import type { ConfigSnapshot, ScannedConfig } from '../clients/discover.js';
import type { FileFormat } from '../clients/formats.js';
import { replaceToken } from '../clients/edit.js';
import { checkWritable } from '../clients/write.js';
import { ConfigFileError, RotatorError } from '../errors.js';
import type { Secret } from '../secret.js';
import type { ScanResult } from '../scan.js';

export interface FilePlan {
  path: string;
  client: string;
  format: FileFormat;
  snapshot: ConfigSnapshot;
  template: PlannedTemplate;
}

/**
 * The new content, planned and verified before the call with a placeholder in place of the
 * token. After the call only the substitution remains, which keeps the window in which
 * clients hold a dead token close to the cost of the writes themselves.
 */
export interface PlannedTemplate {
  text: string;
  placeholder: string;
  count: number;
}

/**
 * A token of these characters reads back the same in every format's literal the placeholder
 * sat in (no escaping in JSON, TOML, YAML, shell; long enough that YAML cannot take it for
 * a boolean or null; starts with a letter so it is never a number).
 */
const PLAIN_TOKEN = /^[A-Za-z][A-Za-z0-9_]{15,}$/;

export function fillTemplate(t: PlannedTemplate, token: string): string | null {
  if (!PLAIN_TOKEN.test(token)) return null;
  const parts = t.text.split(t.placeholder);
  if (parts.length !== t.count + 1) return null;
  return parts.join(token);
}

export interface RotationPlan {
  fingerprint: string;
  secret: Secret;
  files: FilePlan[];
}

/** What a successful preflight would write with, so planning is tested without a real token. */
function placeholderToken(): string {
  return 'ctxPLACEHOLDER' + randomBytes(30).toString('hex');
}

/**
 * Preflight (contract guarantee 1): every config holding the token is read, parsed, checked
 * writable, and its new content planned, before anything is called. Throws naming the file.
 */
export async function planRotation(scan: ScanResult, fp: string): Promise<RotationPlan> {
  const found = scan.tokens.get(fp);
  if (!found) {
    throw new RotatorError('E_TOKEN_UNKNOWN', `No config holds token ${fp}.`, {
      hint: 'Run "mcp-token-rotator status" to see the tracked fingerprints, or "mcp-token-rotator scan" after adding the token to a config.',
    });
  }
  const paths = [...new Set(found.sites.map((s) => s.path))];
  const byPath = new Map(scan.configs.map((c) => [c.candidate.path, c] as const));
  const problems: ConfigFileError[] = [];
  // A config we cannot parse but that contains the token's text would be left holding a dead token.
  for (const c of scan.configs) {
    if (c.status === 'error' && c.snapshot && c.snapshot.text.includes(found.secret.reveal())) {
      problems.push(
        new ConfigFileError('E_CONFIG_PARSE', c.candidate.path, `${c.candidate.path} holds token ${fp} but cannot be parsed: ${c.error?.message ?? ''}`, 'Fix its syntax, then run the command again; nothing was changed.'),
      );
    }
  }
  const files: FilePlan[] = [];
  await Promise.all(
    paths.map(async (p) => {
      const c = byPath.get(p) as ScannedConfig;
      const snap = c.snapshot as ConfigSnapshot;
      try {
        const placeholder = placeholderToken();
        const planned = replaceToken(snap.text, c.candidate.format, found.secret.reveal(), placeholder);
        const left = planned.text.indexOf(found.secret.reveal());
        if (left >= 0) {
          // A copy this tool does not know how to rewrite (an unusual shell line, another key, a
          // comment) would keep the dead token after the rotation.
          const line = planned.text.slice(0, left).split('\n').length;
          throw new ConfigFileError('E_CONFIG_PARSE', p, `${p} holds token ${fp} on line ${line} in a place this tool cannot rewrite safely.`, `Edit line ${line} by hand (use the CERTORIX_API_TOKEN forms in docs/clients.md, or remove that copy), then run the command again; nothing was changed.`);
        }
        await checkWritable(p, snap.realPath, { data: Buffer.from(planned.text, 'utf8'), mode: snap.stat.mode });
        files.push({ path: p, client: c.candidate.client, format: c.candidate.format, snapshot: snap, template: { text: planned.text, placeholder, count: planned.replaced } });
      } catch (e) {
        problems.push(
          e instanceof ConfigFileError
            ? e
            : new ConfigFileError('E_CONFIG_PARSE', p, `Cannot plan the rewrite of ${p}: ${(e as Error).message}`, 'Check the file; nothing was changed.', e),
        );
      }
    }),
  );
  if (problems.length) {
    const first = problems[0] as ConfigFileError;
    const more = problems.length > 1 ? `\n${problems.slice(1).map((p) => `  also: ${p.message}`).join('\n')}` : '';
    throw new ConfigFileError(first.code as 'E_CONFIG_UNWRITABLE', first.file ?? '', `Preflight failed for token ${fp}, nothing was called or written: ${first.message}${more}`, first.hint ?? 'Fix the file and run the command again.', first);
  }
  files.sort((a, b) => a.path.localeCompare(b.path));
  return { fingerprint: fp, secret: found.secret, files };
}

