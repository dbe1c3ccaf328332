/**
 * Pure: the relative links and #anchors of Markdown files, checked against the files and the
 * headings they point at, with GitHub's anchor rules (lowercase; punctuation but `-` and `_`
 * dropped; spaces to `-`; a repeated heading gets `-1`, `-2`, ...). Fenced code blocks and
 * inline code are not Markdown, so links inside them are not links.
 */
import path from 'node:path';

/** Text without fenced code blocks and inline code spans (kept as blanks, so lines stay). */
export function stripCode(md: string): string {
  const fenced = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (m) => m.replace(/[^\n]/g, ' '));
  return fenced.replace(/`+[^`\n]*`+/g, (m) => ' '.repeat(m.length));
}

export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Every anchor a file offers: its headings' slugs (deduplicated as GitHub does) and `<a id>`/`name`s. */
export function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const fencedOnly = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (m) => m.replace(/[^\n]/g, ' '));
  for (const m of fencedOnly.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1] ?? '');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of md.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1] ?? '');
  return out;
}

export interface Link {
  line: number;
  target: string;
}

/** Inline links and images `[x](target "title")` and reference definitions `[x]: target`. */
export function linksOf(md: string): Link[] {
  const text = stripCode(md);
  const out: Link[] = [];
  const lineAt = (i: number): number => text.slice(0, i).split('\n').length;
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line: lineAt(m.index ?? 0), target: m[1] ?? '' });
  for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) out.push({ line: lineAt(m.index ?? 0), target: m[1] ?? '' });
  return out;
}

export interface Broken {
  file: string;
  line: number;
  target: string;
  why: string;
}

/**
 * Checks the links of `files` (paths relative to `root`). `read(rel)` returns a file's text or
 * null when it does not exist; `isDir(rel)` says whether a path is a directory.
 */
export function checkLinks(files: string[], read: (rel: string) => string | null, isDir: (rel: string) => boolean): Broken[] {
  const broken: Broken[] = [];
  const anchors = new Map<string, Set<string>>();
  const anchorsFor = (rel: string): Set<string> | null => {
    if (!anchors.has(rel)) {
      const t = read(rel);
      if (t === null) return null;
      anchors.set(rel, anchorsOf(t));
    }
    return anchors.get(rel) ?? null;
  };
  for (const file of files) {
    const text = read(file);
    if (text === null) {
      broken.push({ file, line: 0, target: file, why: 'file to check does not exist' });
      continue;
    }
    for (const { line, target } of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, file: ... are not ours
      const hash = target.indexOf('#');
      const rawPath = hash >= 0 ? target.slice(0, hash) : target;
      const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : '';
      const rel = rawPath === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(rawPath))).replace(/(.)\/$/, '$1');
      if (rel.startsWith('../')) {
        broken.push({ file, line, target, why: 'points outside the repository' });
        continue;
      }
      if (rawPath !== '' && !isDir(rel) && read(rel) === null) {
        broken.push({ file, line, target, why: `${rel} does not exist` });
        continue;
      }
      if (anchor === '') continue;
      if (!rel.endsWith('.md')) {
        broken.push({ file, line, target, why: 'an #anchor into a file that is not Markdown' });
        continue;
      }
      if (!anchorsFor(rel)?.has(anchor)) broken.push({ file, line, target, why: `${rel} has no heading with the anchor #${anchor}` });
    }
  }
  return broken;
}
