import { createHash } from 'node:crypto';
import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Keeps a copy of a config as it was before its first rewrite in a rotation. Written only
 * after the regenerate call succeeded, so the token it replaced is already dead; every other
 * token that may be live is passed in `redact` and blanked, so a backup never holds a live
 * one. That includes the replaced token itself after set-token, which adopts a token made
 * elsewhere: nothing here saw the old one die.
 */
export async function backupConfig(
  backupsDir: string,
  configPath: string,
  bytes: Buffer,
  opts: { redact: string[]; keep: number; now: Date },
): Promise<string | null> {
  if (opts.keep <= 0) return null;
  await mkdir(backupsDir, { recursive: true, mode: 0o700 });
  let text = bytes.toString('utf8');
  // Shorter strings are not tokens, and blanking them could mangle unrelated text.
  for (const live of opts.redact) if (live.length >= 8) text = text.split(live).join('REDACTED-BY-MCP-TOKEN-ROTATOR');
  const id = createHash('sha256').update(configPath).digest('hex').slice(0, 10);
  const stamp = opts.now.toISOString().replace(/[:.]/g, '-');
  const name = `${id}-${path.basename(configPath)}.${stamp}.bak`;
  const file = path.join(backupsDir, name);
  await writeFile(file, text, { mode: 0o600 });
  const mine = (await readdir(backupsDir)).filter((f) => f.startsWith(`${id}-`)).sort();
  for (const old of mine.slice(0, Math.max(0, mine.length - opts.keep))) await unlink(path.join(backupsDir, old)).catch(() => undefined);
  return file;
}
