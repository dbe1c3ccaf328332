/**
 * The README is a front door (at most 300 lines) and every relative link and #anchor in
 * README.md and docs/*.md resolves (contract, "CLI manners"; issue 16 item 2).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/home.js';
import { anchorsOf, checkLinks, linksOf, slug } from '../helpers/md-links.js';

const readRel = (rel: string): string | null => {
  try {
    return readFileSync(path.join(ROOT, rel), 'utf8');
  } catch {
    return null;
  }
};
const isDirRel = (rel: string): boolean => {
  try {
    return statSync(path.join(ROOT, rel)).isDirectory();
  } catch {
    return false;
  }
};
const docs = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

describe('the docs', () => {
  it('README.md is at most 300 lines', () => {
    const lines = (readRel('README.md') ?? '').split('\n').length - 1;
    expect(lines).toBeGreaterThan(20);
    expect(lines).toBeLessThanOrEqual(300);
  });

  it('every relative link and #anchor in README.md and docs/*.md resolves', () => {
    expect(docs.length).toBeGreaterThan(5);
    const broken = checkLinks(docs, readRel, isDirRel);
    expect(broken.map((b) => `${b.file}:${b.line} ${b.target}: ${b.why}`)).toEqual([]);
  });

  it('the README links to every file in docs/', () => {
    const readme = linksOf(readRel('README.md') ?? '').map((l) => l.target.split('#')[0]);
    for (const d of docs.filter((f) => f !== 'README.md')) expect(readme, d).toContain(d);
  });
});

describe('the link checker', () => {
  it.each([
    ['Broker mode', 'broker-mode'],
    ['`scan`', 'scan'],
    ['install-service, uninstall-service', 'install-service-uninstall-service'],
    ['The Certorix REST API, as this project assumes it', 'the-certorix-rest-api-as-this-project-assumes-it'],
    ['Claude Code: headersHelper', 'claude-code-headershelper'],
    ['See [Paths](x.md)', 'see-paths'],
    ['snake_case and --flags', 'snake_case-and---flags'],
  ])('slug(%j) = %j', (heading, want) => {
    expect(slug(heading)).toBe(want);
  });

  it('numbers repeated headings and ignores headings in code blocks', () => {
    const a = anchorsOf('# Dev\n\n## Dev\n\n```sh\n# not a heading\n```\n<a id="here"></a>\n');
    expect([...a].sort()).toEqual(['dev', 'dev-1', 'here']);
  });

  it('finds each kind of broken link and none in code', () => {
    const files: Record<string, string> = {
      'README.md': [
        '[ok](docs/a.md) [ok2](docs/a.md#real-one) [self](#top) [web](https://x.example/y) [dir](docs/)',
        '[missing file](docs/nope.md)',
        '[missing anchor](docs/a.md#not-there)',
        '[bad self](#nowhere)',
        '`[in code](docs/nope.md)`',
        '```md\n[in a fence](docs/nope.md)\n```',
        '[ref]: docs/gone.md',
        '# Top',
      ].join('\n'),
      'docs/a.md': '# A\n\n## Real one\n\n[up](../README.md#top) [escape](../../etc/passwd)\n',
    };
    const broken = checkLinks(Object.keys(files), (rel) => files[rel] ?? null, (rel) => rel === 'docs');
    expect(broken.map((b) => `${b.file}:${b.line} ${b.target}`)).toEqual([
      'README.md:2 docs/nope.md',
      'README.md:3 docs/a.md#not-there',
      'README.md:4 #nowhere',
      'README.md:9 docs/gone.md',
      'docs/a.md:5 ../../etc/passwd',
    ]);
  });
});
