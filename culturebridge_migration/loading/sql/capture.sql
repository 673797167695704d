-- Change capture from cutover (loading/change_capture.py): what the Phase 2 app writes, for the fallback to
-- replay into Bubble. The triggers that call capture_change() are installed on the Phase 2 tables by
-- `culturebridge capture install` (and the cutover), not here. Idempotent.

-- One row per row-level change the app made: no row image, the fallback reads the row as it is then.
CREATE TABLE IF NOT EXISTS {mig}.captured_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name  text NOT NULL,
    row_id      bigint NOT NULL,       -- the Phase 2 id
    bubble_id   text,                  -- at the time; NULL: a row the app created
    operation   text NOT NULL CONSTRAINT captured_changes_operation_check
                CHECK (operation IN ('insert', 'update', 'delete')),
    captured_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid        bigint NOT NULL        -- the writing transaction (pg_current_xact_id, PostgreSQL 13+)
);
CREATE INDEX IF NOT EXISTS captured_changes_row_idx ON {mig}.captured_changes (table_name, row_id, seq);

-- SECURITY DEFINER: the app's own role needs no rights on the bookkeeping schema for its writes to be
-- recorded. The migration's sessions set culturebridge.migrating (loading/database.py): never recorded,
-- so a sync or a rollback after cutover is not echoed back to Bubble. An UPDATE that changes nothing is
-- not a change.
CREATE OR REPLACE FUNCTION {mig}.capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $capture$
DECLARE
    changed record;
BEGIN
    IF current_setting('culturebridge.migrating', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD IS NOT DISTINCT FROM NEW THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    INSERT INTO {mig}.captured_changes (table_name, row_id, bubble_id, operation, txid)
    VALUES (TG_TABLE_NAME, changed.id, changed.bubble_id, lower(TG_OP), pg_current_xact_id()::text::bigint);
    RETURN NULL;
END
$capture$;

-- When capture began (the cutover): a Bubble record modified after it was changed in Phase 1, which was
-- to be read-only, and the fallback lists it as a conflict instead of overwriting it.
CREATE TABLE IF NOT EXISTS {mig}.capture_started (
    only_row   boolean PRIMARY KEY DEFAULT true CONSTRAINT capture_started_one_row CHECK (only_row),
    started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The fallback's ledger, one row per Phase 2 row it wrote to Bubble: the captured changes up to
-- applied_seq are in Bubble. `sending`: a create was sent and its answer not yet recorded, so a rerun looks
-- the thing up by its phase2_id before creating it again (Bubble's create is not idempotent).
CREATE TABLE IF NOT EXISTS {mig}.fallback_rows (
    table_name      text NOT NULL,
    row_id          bigint NOT NULL,
    applied_seq     bigint NOT NULL DEFAULT 0,
    sending         boolean NOT NULL DEFAULT false,
    bubble_id       text,
    bubble_modified timestamptz,           -- Bubble's Modified Date after the fallback's write, read back
    written_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (table_name, row_id)
);
