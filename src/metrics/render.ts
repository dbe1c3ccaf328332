/**
 * Pure: the daemon's metrics in the Prometheus text exposition format (version 0.0.4), for
 * node_exporter's textfile collector (settings `metricsFile`). One HELP and one TYPE line per
 * metric family, then its samples; label values escaped (backslash, double quote, line feed).
 *
 * What an operator alerts on: a token's age and state, its expiry where the provider gives
 * one, when each token was last confirmed by its API, when a rotation last succeeded, and how
 * many rotations failed. Never a token value: tokens are named by fingerprint, as everywhere.
 * A fact that is not known is left out (no sample), never written as a made-up 0.
 */

export const TOKEN_STATES = ['ok', 'due', 'invalid', 'rotating'] as const;
export type MetricsTokenState = (typeof TOKEN_STATES)[number];

export interface MetricsToken {
  fingerprint: string;
  provider: string;
  state: MetricsTokenState;
  /** Whole days since the token was created; null while unknown. */
  ageDays: number | null;
  /** ISO 8601; null when it does not expire or it is not known. */
  expiresAt: string | null;
  /** ISO 8601: when the provider's API last answered about this token (200 or 401). */
  lastCheckedAt: string | null;
}

export interface MetricsInput {
  tokens: MetricsToken[];
  /** ISO 8601 of the newest `rotated` event; null when none. */
  lastRotationAt: string | null;
  /** `rotation-failed` events in the history. */
  rotationFailures: number;
  /** `heal-refused` events: a retired token appeared in a file the daemon would not write to. */
  healRefusals: number;
}

type Labels = Record<string, string>;
interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Array<{ labels: Labels; value: number }>;
}

/** A label value: backslash, double quote and line feed escaped, as the format requires. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed escaped. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** Seconds since the epoch of an ISO 8601 time, or null when absent or not a time. */
function seconds(iso: string | null): number | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

export function renderMetrics(input: MetricsInput): string {
  const tokens = [...input.tokens].sort((a, b) => a.provider.localeCompare(b.provider) || a.fingerprint.localeCompare(b.fingerprint));
  const id = (t: MetricsToken): Labels => ({ fingerprint: t.fingerprint, provider: t.provider });
  const perToken = (pick: (t: MetricsToken) => number | null) =>
    tokens.flatMap((t) => {
      const v = pick(t);
      return v === null ? [] : [{ labels: id(t), value: v }];
    });
  const lastRotation = seconds(input.lastRotationAt);
  const families: Family[] = [
    { name: 'mcp_token_age_days', type: 'gauge', help: 'Whole days since the token was created (absent while the creation date is unknown).', samples: perToken((t) => t.ageDays) },
    {
      name: 'mcp_token_state',
      type: 'gauge',
      help: 'The token state as "status" shows it: 1 for the current state, 0 for the others (ok, due, invalid, rotating).',
      samples: tokens.flatMap((t) => TOKEN_STATES.map((s) => ({ labels: { ...id(t), state: s }, value: t.state === s ? 1 : 0 }))),
    },
    { name: 'mcp_token_expiry_timestamp_seconds', type: 'gauge', help: 'When the token expires, in seconds since the epoch (absent when it does not expire or it is not known).', samples: perToken((t) => seconds(t.expiresAt)) },
    { name: 'mcp_token_last_check_timestamp_seconds', type: 'gauge', help: "When the token's API last answered about it (valid or refused), in seconds since the epoch.", samples: perToken((t) => seconds(t.lastCheckedAt)) },
    { name: 'mcp_token_rotator_tokens', type: 'gauge', help: 'Tokens tracked (held by a config, or in an unfinished rotation).', samples: [{ labels: {}, value: tokens.length }] },
    {
      name: 'mcp_token_rotator_last_rotation_success_timestamp_seconds',
      type: 'gauge',
      help: 'When a rotation last finished successfully, in seconds since the epoch (absent when none did).',
      samples: lastRotation === null ? [] : [{ labels: {}, value: lastRotation }],
    },
    { name: 'mcp_token_rotator_rotation_failures_total', type: 'counter', help: 'Rotations that failed (history events "rotation-failed").', samples: [{ labels: {}, value: input.rotationFailures }] },
    { name: 'mcp_token_rotator_heal_refusals_total', type: 'counter', help: 'Retired tokens that appeared in a file the daemon would not write to (history events "heal-refused").', samples: [{ labels: {}, value: input.healRefusals }] },
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels);
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
      lines.push(`${f.name}${l} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
