-- Migration bookkeeping, kept apart from the application tables. Idempotent.
-- {mig} is the bookkeeping schema (default migration).

CREATE SCHEMA IF NOT EXISTS {mig};

-- One row per Dagster run that wrote to Phase 2.
CREATE TABLE IF NOT EXISTS {mig}.runs (
    run_id     text PRIMARY KEY,
    job_name   text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    rolled_back_at timestamptz
);
-- A rehearsal (dry run) changed nothing: it is kept, marked rolled back, for its reports.
ALTER TABLE {mig}.runs ADD COLUMN IF NOT EXISTS rehearsal boolean NOT NULL DEFAULT false;

-- What each run did to each entity: the counts the row-count checks and reports use.
CREATE TABLE IF NOT EXISTS {mig}.entity_runs (
    run_id      text NOT NULL REFERENCES {mig}.runs (run_id),
    entity      text NOT NULL,
    exported    integer NOT NULL,
    loaded      integer NOT NULL,
    inserted    integer NOT NULL,
    updated     integer NOT NULL,
    unchanged   integer NOT NULL,
    rejected    integer NOT NULL,
    deleted     integer NOT NULL DEFAULT 0,  -- rows removed because they are gone from Bubble
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, entity)
);

-- Every source record that was not loaded, and why. Values of password fields are masked.
CREATE TABLE IF NOT EXISTS {mig}.rejects (
    run_id    text NOT NULL REFERENCES {mig}.runs (run_id),
    entity    text NOT NULL,
    bubble_id text NOT NULL,
    column_name text NOT NULL,
    field     text NOT NULL,
    value     text,
    reason    text NOT NULL,
    message   text NOT NULL
);
ALTER TABLE {mig}.rejects ADD COLUMN IF NOT EXISTS created_at text;  -- Bubble's Created Date of the record
-- Not a key: a record without an _id is still a reject of its own.
ALTER TABLE {mig}.rejects DROP CONSTRAINT IF EXISTS rejects_pkey;
CREATE INDEX IF NOT EXISTS rejects_run_idx ON {mig}.rejects (run_id, entity);
CREATE INDEX IF NOT EXISTS rejects_entity_idx ON {mig}.rejects (entity, bubble_id);

-- Values changed before they were stored, the original kept: what, why, and who decided.
CREATE TABLE IF NOT EXISTS {mig}.value_fixes (
    run_id      text NOT NULL REFERENCES {mig}.runs (run_id),
    entity      text NOT NULL,
    bubble_id   text NOT NULL,
    field       text NOT NULL,
    column_name text NOT NULL,
    original    text NOT NULL,
    stored      text NOT NULL,
    reason      text NOT NULL,
    decided_by  text NOT NULL
);
CREATE INDEX IF NOT EXISTS value_fixes_run_idx ON {mig}.value_fixes (run_id, entity);

-- Bubble id -> Phase 2 id, with the last run that loaded the record.
CREATE TABLE IF NOT EXISTS {mig}.id_map (
    entity     text NOT NULL,
    bubble_id  text NOT NULL,
    phase2_id  bigint NOT NULL,
    run_id     text NOT NULL,
    PRIMARY KEY (entity, bubble_id)
);
CREATE INDEX IF NOT EXISTS id_map_run_idx ON {mig}.id_map (run_id, entity);

-- Rollback data: for every row a run inserted, changed or deleted, the row as it was before.
CREATE TABLE IF NOT EXISTS {mig}.row_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     text NOT NULL REFERENCES {mig}.runs (run_id),
    table_name text NOT NULL,
    bubble_id  text NOT NULL,
    action     text NOT NULL CONSTRAINT row_changes_action_check CHECK (action IN ('insert', 'update', 'delete')),
    old_row    jsonb,
    new_hash   text  -- md5 of the row as this run left it: a rollback sees whether the app changed it since
);
ALTER TABLE {mig}.row_changes ADD COLUMN IF NOT EXISTS new_hash text;
CREATE INDEX IF NOT EXISTS row_changes_run_idx ON {mig}.row_changes (run_id, table_name);

-- Databases made before deletions were handled: the same columns and constraint as above.
ALTER TABLE {mig}.entity_runs ADD COLUMN IF NOT EXISTS deleted integer NOT NULL DEFAULT 0;
ALTER TABLE {mig}.row_changes DROP CONSTRAINT IF EXISTS row_changes_action_check;
ALTER TABLE {mig}.row_changes ADD CONSTRAINT row_changes_action_check CHECK (action IN ('insert', 'update', 'delete'));

-- Rows gone from Bubble that stay in Phase 2 (deleted_records = flag, or still referenced), for the
-- app and people to act on. Every full export recomputes an entity's flags.
CREATE TABLE IF NOT EXISTS {mig}.deleted_in_bubble (
    entity     text NOT NULL,
    bubble_id  text NOT NULL,
    phase2_id  bigint NOT NULL,
    reason     text NOT NULL,
    run_id     text NOT NULL REFERENCES {mig}.runs (run_id),  -- the run that first flagged it
    flagged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, bubble_id)
);

-- Incremental sync: the Modified Date up to which each type is known to be migrated.
CREATE TABLE IF NOT EXISTS {mig}.watermarks (
    entity         text PRIMARY KEY,
    modified_until timestamptz NOT NULL,
    run_id         text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Bubble types no table migrates, kept verbatim so that nothing of the app is left behind on Bubble.
CREATE TABLE IF NOT EXISTS {mig}.bubble_records (
    bubble_type text NOT NULL,
    bubble_id   text NOT NULL,
    created_at  timestamptz,
    modified_at timestamptz,
    record      jsonb NOT NULL,
    run_id      text NOT NULL REFERENCES {mig}.runs (run_id),  -- the run that last wrote it
    PRIMARY KEY (bubble_type, bubble_id)
);

-- What a run changed in the bookkeeping a rollback must put back (watermarks, deletion flags): each row's
-- version before the run first touched it, NULL when the row did not exist.
CREATE TABLE IF NOT EXISTS {mig}.bookkeeping_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     text NOT NULL REFERENCES {mig}.runs (run_id),
    table_name text NOT NULL,
    key        text NOT NULL,
    old_row    jsonb,
    UNIQUE (run_id, table_name, key)
);

-- The one run that writes to Phase 2 now (see loading/writer_lock.py). The row always exists, so that two
-- runs starting at once queue on it; an epoch last_step_at means nobody holds it.
CREATE TABLE IF NOT EXISTS {mig}.writer (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    run_id       text NOT NULL,
    job_name     text NOT NULL,
    acquired_at  timestamptz NOT NULL,
    last_step_at timestamptz NOT NULL,  -- when a step of the holder last began or ended
    active_steps integer NOT NULL,
    steps_left   integer NOT NULL DEFAULT 0  -- of the holder's run: at 0 the run is over and lets go
);
INSERT INTO {mig}.writer VALUES (true, '', '', 'epoch', 'epoch', 0, 0) ON CONFLICT (only_row) DO NOTHING;

-- Phase 2's schema brought up to the rules (loading/schema_evolution.py): one row per change set, in order.
CREATE TABLE IF NOT EXISTS {mig}.schema_migrations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    applied_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    rules_version text NOT NULL,         -- sha256 of the schema SQL the rules generate
    applied       jsonb NOT NULL,        -- [{table, what, sql}], in the order they ran
    refused       jsonb NOT NULL         -- [{table, what, sql, error}]: PostgreSQL said no; still a difference
);

-- Every try of the login bridge (culturebridge_migration/bridge/): who, when, what came of it, from where.
-- Never a password, a hash or Bubble's token. The bridge's per-account and per-address limits count these
-- rows, so every service process sharing the database shares them.
CREATE TABLE IF NOT EXISTS {mig}.password_bridge_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    account      text NOT NULL,  -- the e-mail as given, trimmed and lower-cased: what per-account limits count
    user_id      bigint,         -- Phase 2's users.id, when the e-mail or Bubble's answer named one
    outcome      text NOT NULL CONSTRAINT password_bridge_attempts_outcome_check CHECK (outcome IN (
        'ok', 'wrong_password', 'unknown_email', 'not_migrated', 'too_many_tries', 'window_closed', 'bubble_unavailable'
    )),
    path         text CONSTRAINT password_bridge_attempts_path_check CHECK (path IN ('phase2', 'bubble')),
    source       text NOT NULL   -- the client's address as the backend reports it (or the service saw it)
);
CREATE INDEX IF NOT EXISTS password_bridge_attempts_account_idx ON {mig}.password_bridge_attempts (account, attempted_at);
CREATE INDEX IF NOT EXISTS password_bridge_attempts_source_idx ON {mig}.password_bridge_attempts (source, attempted_at);
