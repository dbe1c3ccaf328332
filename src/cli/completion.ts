/**
 * Shell completion scripts (bash, zsh, fish), generated from the command registry in
 * commands.ts so that a new command or option completes without touching this file.
 * Pure: `completionScript(shell, specs)` returns the text.
 *
 * Fingerprints for `--fingerprint` come from `mcp-token-rotator status --json` at completion
 * time: offline (status reads what is recorded) and never a token value. The scripts pick
 * them out with sed so they need no jq.
 */
import type { CommandSpec } from './commands.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

const PROG = 'mcp-token-rotator';

/** What the value of a string option is, by its name: drives what the shell offers. */
type ValueKind = 'fingerprint' | 'file' | 'dir' | 'any';

interface Opt {
  long: string;
  short?: string;
  /** null: a flag (boolean). */
  value: ValueKind | null;
  desc: string;
}

export interface CompletionCommand {
  name: string;
  desc: string;
  opts: Opt[];
  /** Words the first positional takes (sub-commands, a shell name). */
  words: string[];
  /** The command runs another command after `--` (exec): complete that one normally there. */
  passthrough: boolean;
}

// Only plain words go into the scripts; anything else in the registry is skipped, not quoted.
const WORD = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function valueKind(name: string): ValueKind {
  if (name === 'fingerprint') return 'fingerprint';
  if (name === 'config' || name.endsWith('file')) return 'file';
  if (name.endsWith('dir')) return 'dir';
  return 'any';
}

/** The option's line in the command's help text ("  --offline        Do not call the API."). */
function optionDesc(details: string, long: string): string {
  const re = new RegExp(`^\\s*(?:-[A-Za-z], )?--${long.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?: [A-Z][A-Z_]*)?\\s+(.+)$`, 'm');
  return firstSentence(re.exec(details)?.[1] ?? '');
}

/** The first sentence, at most about 80 characters (cut at a word), for a completion menu. */
function firstSentence(s: string): string {
  const t = s.trim();
  const i = t.search(/[.;](\s|$)/);
  const one = i > 0 ? t.slice(0, i) : t;
  return one.length <= 80 ? one : one.slice(0, one.lastIndexOf(' ', 80));
}

const GLOBAL_OPTS: Opt[] = [
  { long: 'json', value: null, desc: 'One JSON document on stdout' },
  { long: 'config', value: 'file', desc: 'Settings file' },
  { long: 'help', short: 'h', value: null, desc: 'Help for this command' },
];

/** The registry as completion sees it: commands, their options (plus the common ones) and words. */
export function completionModel(specs: readonly CommandSpec[]): CompletionCommand[] {
  const cmds: CompletionCommand[] = [];
  for (const s of specs) {
    if (!WORD.test(s.name)) continue;
    const opts: Opt[] = [];
    for (const [long, o] of Object.entries(s.options)) {
      if (!WORD.test(long)) continue;
      const short = typeof o.short === 'string' && /^[A-Za-z]$/.test(o.short) ? o.short : undefined;
      opts.push({ long, ...(short ? { short } : {}), value: o.type === 'string' ? valueKind(long) : null, desc: optionDesc(s.details, long) });
    }
    for (const g of GLOBAL_OPTS) if (!opts.some((o) => o.long === g.long)) opts.push(g);
    cmds.push({
      name: s.name,
      desc: firstSentence(s.summary),
      opts,
      words: (s.words ?? []).filter((w) => WORD.test(w)),
      passthrough: s.passthrough === true,
    });
  }
  return cmds;
}

export function completionScript(shell: Shell, specs: readonly CommandSpec[]): string {
  const cmds = completionModel(specs);
  if (shell === 'bash') return bash(cmds);
  if (shell === 'zsh') return zsh(cmds);
  return fish(cmds);
}

const FP_SED = `sed -n 's/.*"fingerprint": *"\\([0-9a-f]\\{12\\}\\)".*/\\1/p'`;
const FP_COMMAND = `command ${PROG} status --json 2>/dev/null | ${FP_SED}`;

function optWords(c: CompletionCommand): string {
  return c.opts.flatMap((o) => [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])]).join(' ');
}

function valueOpts(cmds: CompletionCommand[], kind: ValueKind): string[] {
  return [...new Set(cmds.flatMap((c) => c.opts.filter((o) => o.value === kind).map((o) => `--${o.long}`)))];
}

/** `case "$prev" in` branches (same syntax in bash and zsh): what follows an option that takes a value. */
function valueBranches(cmds: CompletionCommand[], action: Record<ValueKind, string>): string {
  return (Object.keys(action) as ValueKind[])
    .map((k) => [valueOpts(cmds, k), action[k]] as const)
    .filter(([opts]) => opts.length > 0)
    .map(([opts, act]) => `    ${opts.join('|')}) ${act}; return 0 ;;`)
    .join('\n');
}

function bash(cmds: CompletionCommand[]): string {
  const cases = cmds.map((c) => `    ${c.name}) opts="${optWords(c)}"; words="${c.words.join(' ')}"; pass=${c.passthrough ? 1 : 0} ;;`).join('\n');
  const values = valueBranches(cmds, {
    fingerprint: 'COMPREPLY=( $(compgen -W "$(_mcp_token_rotator_fingerprints)" -- "$cur") )',
    file: 'compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -f -- "$cur") )',
    dir: 'compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -d -- "$cur") )',
    any: ':',
  });
  return `# ${PROG} completion for bash. Load it now:  source <(${PROG} completion bash)
# or for good: ${PROG} completion bash > ~/.local/share/bash-completion/completions/${PROG}
_mcp_token_rotator_fingerprints() {
  ${FP_COMMAND}
}

_mcp_token_rotator() {
  local cur prev cmd opts words pass i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  COMPREPLY=()
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${cmds.map((c) => c.name).join(' ')} --help --version" -- "$cur") )
    return 0
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${cases}
    *) return 0 ;;
  esac
  if [ "$pass" -eq 1 ]; then
    for ((i = 2; i < COMP_CWORD; i++)); do
      if [ "\${COMP_WORDS[i]}" = "--" ]; then
        compopt -o default 2>/dev/null
        COMPREPLY=( $(compgen -c -- "$cur") )
        return 0
      fi
    done
  fi
  case "$prev" in
${values}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$words" ]; then
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
  fi
  return 0
}
complete -F _mcp_token_rotator ${PROG}
`;
}

/** A single-quoted zsh/fish string. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function zsh(cmds: CompletionCommand[]): string {
  // _describe splits "name:description" at the first colon; names are plain words, and
  // colons later in the description are shown as they are.
  const cases = cmds
    .map((c) => {
      const opts = c.opts.flatMap((o) => [`--${o.long}:${o.desc}`, ...(o.short ? [`-${o.short}:${o.desc}`] : [])]);
      return `    ${c.name})
      opts=(${opts.map(sq).join(' ')})
      subs=(${c.words.map(sq).join(' ')})
      pass=${c.passthrough ? 1 : 0} ;;`;
    })
    .join('\n');
  const values = valueBranches(cmds, {
    fingerprint: 'fps=(${(f)"$(_mcp_token_rotator_fingerprints)"}); compadd -- $fps',
    file: '_files',
    dir: '_files -/',
    any: ':',
  });
  return `#compdef ${PROG}
# ${PROG} completion for zsh. Load it now:  source <(${PROG} completion zsh)
# or for good: ${PROG} completion zsh > "\${fpath[1]}/_${PROG}"  (then start a new zsh)
_mcp_token_rotator_fingerprints() {
  ${FP_COMMAND}
}

_mcp_token_rotator() {
  local cmd prev i pass=0
  local -a cmds opts subs fps
  cmds=(${cmds.map((c) => sq(`${c.name}:${c.desc}`)).join(' ')})
  if (( CURRENT == 2 )); then
    if [[ $words[CURRENT] == -* ]]; then
      compadd -- --help --version
    else
      _describe -t commands 'command' cmds
    fi
    return
  fi
  cmd=$words[2]
  prev=$words[CURRENT-1]
  case $cmd in
${cases}
    *) return 1 ;;
  esac
  if (( pass )); then
    i=\${words[(i)--]}
    if (( i < CURRENT )); then
      shift $i words
      (( CURRENT -= i ))
      _normal
      return
    fi
  fi
  case $prev in
${values}
  esac
  if [[ $words[CURRENT] == -* ]] || (( CURRENT > 3 )) || (( \${#subs} == 0 )); then
    _describe -t options 'option' opts
  else
    compadd -- $subs
  fi
}

if [[ $funcstack[1] == _${PROG} ]]; then
  _mcp_token_rotator "$@"
else
  compdef _mcp_token_rotator ${PROG}
fi
`;
}

function fish(cmds: CompletionCommand[]): string {
  const c0 = `complete -c ${PROG}`;
  const lines: string[] = [
    `# ${PROG} completion for fish. Load it now:  ${PROG} completion fish | source`,
    `# or for good: ${PROG} completion fish > ~/.config/fish/completions/${PROG}.fish`,
    `function __mcp_token_rotator_fingerprints`,
    `    ${FP_COMMAND}`,
    `end`,
    `${c0} -f`,
    `${c0} -n __fish_use_subcommand -l help -s h -d 'Help'`,
    `${c0} -n __fish_use_subcommand -l version -s v -d 'Print the version'`,
  ];
  for (const c of cmds) {
    lines.push(`${c0} -n __fish_use_subcommand -a ${c.name} -d ${sq(c.desc)}`);
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    for (const w of c.words) lines.push(`${c0} ${when} -a ${w}`);
    for (const o of c.opts) {
      const base = `${c0} ${when} -l ${o.long}${o.short ? ` -s ${o.short}` : ''}`;
      const d = o.desc ? ` -d ${sq(o.desc)}` : '';
      if (o.value === null) lines.push(base + d);
      else if (o.value === 'fingerprint') lines.push(`${base} -x -a '(__mcp_token_rotator_fingerprints)'${d}`);
      else if (o.value === 'file') lines.push(`${base} -r -F${d}`);
      else if (o.value === 'dir') lines.push(`${base} -x -a '(__fish_complete_directories)'${d}`);
      else lines.push(`${base} -x${d}`);
    }
  }
  return lines.join('\n') + '\n';
}
