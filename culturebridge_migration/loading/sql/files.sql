-- What became of each reference to a Bubble file (files/bookkeeping.py reads and writes it). Idempotent.
-- {mig} is the bookkeeping schema, as in migration.sql.
CREATE SCHEMA IF NOT EXISTS {mig};

CREATE TABLE IF NOT EXISTS {mig}.files (
    entity       text NOT NULL,
    bubble_id    text NOT NULL,
    column_name  text NOT NULL,
    original_url text NOT NULL,            -- as Bubble held it; a rollback puts it back
    storage_key  text NOT NULL,
    public_url   text,                     -- what Phase 2 holds instead, once copied
    bytes        bigint CHECK (bytes >= 0),
    sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text,
    status       text NOT NULL CHECK (status IN ('copied', 'missing', 'failed')),
    reason       text,
    run_id       text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (entity, bubble_id, column_name, original_url),
    CONSTRAINT files_copied_complete CHECK (
        status <> 'copied' OR (public_url IS NOT NULL AND bytes IS NOT NULL AND sha256 IS NOT NULL)
    ),
    CONSTRAINT files_failure_explained CHECK (status = 'copied' OR reason IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS files_original_url_idx ON {mig}.files (original_url) WHERE status = 'copied';
