/**
 * Numbered migrations: index i brings user_version from i to i+1. Never edit a shipped
 * entry; append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  /* 1 */ `
  CREATE TABLE tokens (
    fingerprint     TEXT PRIMARY KEY,
    provider        TEXT NOT NULL DEFAULT 'certorix',
    account         TEXT,
    token_id        TEXT,
    role            TEXT,
    created_at      TEXT,
    first_seen_at   TEXT NOT NULL,
    last_seen_at    TEXT,
    last_checked_at TEXT,
    state           TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active','invalid','retired')),
    retired_at      TEXT,
    replaced_by     TEXT,
    last_warned_at  TEXT,
    last_headsup_at TEXT
  );
  CREATE INDEX tokens_state ON tokens(state);

  CREATE TABLE configs (
    path       TEXT PRIMARY KEY,
    client     TEXT NOT NULL,
    format     TEXT NOT NULL,
    status     TEXT NOT NULL,
    error      TEXT,
    scanned_at TEXT NOT NULL
  );

  CREATE TABLE locations (
    path        TEXT NOT NULL,
    key_path    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    client      TEXT NOT NULL,
    server      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    PRIMARY KEY (path, key_path)
  );
  CREATE INDEX locations_fp ON locations(fingerprint);

  CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    type            TEXT NOT NULL,
    fingerprint     TEXT,
    new_fingerprint TEXT,
    source          TEXT,
    files           TEXT NOT NULL DEFAULT '[]',
    detail          TEXT
  );
  CREATE INDEX events_at ON events(at DESC, id DESC);
  CREATE INDEX events_fp ON events(fingerprint);

  CREATE TABLE rotations (
    id              INTEGER PRIMARY KEY,
    old_fingerprint TEXT NOT NULL,
    provider        TEXT NOT NULL,
    source          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    step            TEXT NOT NULL,
    old_token       TEXT,
    new_token       TEXT,
    new_fingerprint TEXT,
    new_token_id    TEXT,
    new_created_at  TEXT,
    files           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    started_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
  );
  CREATE INDEX rotations_open ON rotations(step) WHERE finished_at IS NULL;

  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
  `,
  /* 2 */ `
  -- Broker mode. A slot is the stable name a converted entry carries (exec <slot>,
  -- headers <slot>); it follows a token lineage across rotations. No token value here.
  CREATE TABLE broker_slots (
    slot        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE INDEX broker_slots_fp ON broker_slots(fingerprint);

  -- One converted server entry. original_text is the entry's text before conversion with
  -- every copy of the token replaced by a marker, so disable restores it byte for byte
  -- with the current token; converted_text is what enable wrote (to notice later edits).
  CREATE TABLE broker_entries (
    id             INTEGER PRIMARY KEY,
    path           TEXT NOT NULL,
    client         TEXT NOT NULL,
    server         TEXT NOT NULL,
    key_path       TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('exec','headers-helper','endpoint')),
    slot           TEXT NOT NULL,
    original_text  TEXT NOT NULL,
    converted_text TEXT NOT NULL,
    upstream_url   TEXT,
    route_secret   TEXT,
    enabled_at     TEXT NOT NULL,
    UNIQUE (path, key_path)
  );
  CREATE INDEX broker_entries_slot ON broker_entries(slot);
  CREATE UNIQUE INDEX broker_entries_route ON broker_entries(route_secret) WHERE route_secret IS NOT NULL;
  `,
  /* 3 */ `
  -- set-token replaced a token that the API still accepted: when it last did. The token
  -- stays 'retired' (no config holds it) but is not dead; status lists it until it is seen
  -- dead or rotated. NULL: not known to be alive.
  ALTER TABLE tokens ADD COLUMN still_alive_at TEXT;
  `,
  /* 4 */ `
  -- Where a token has been exposed: a file committed to git (its history keeps the token)
  -- or readable by other users, seen while the token was in it. Kept after the token leaves
  -- the file (broker enable, a hand edit) so that doctor keeps saying so until the token is
  -- rotated. Fingerprints and paths only, never a token value.
  CREATE TABLE exposures (
    fingerprint   TEXT NOT NULL,
    path          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('git','readable')),
    detail        TEXT NOT NULL DEFAULT '',
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (fingerprint, path, kind)
  );
  CREATE INDEX exposures_fp ON exposures(fingerprint);
  `,
  /* 5 */ `
  -- More providers than Certorix (src/providers/). The token's expiry as its API tells it
  -- (NULL: does not expire, or not told), the API base its entry names for itself (GitLab's
  -- GITLAB_API_URL; NULL: the provider's settings/default), and its kind (GitHub classic or
  -- fine-grained, for doctor). A rotation calls the base recorded when it began.
  ALTER TABLE tokens ADD COLUMN expires_at TEXT;
  ALTER TABLE tokens ADD COLUMN api_url TEXT;
  ALTER TABLE tokens ADD COLUMN token_kind TEXT;
  ALTER TABLE rotations ADD COLUMN api_url TEXT;
  `,
];
