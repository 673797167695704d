"""Change capture from cutover: what the Phase 2 app writes after cutover, recorded for the fallback.

Row-level triggers on the migrated tables call `{migration}.capture_change()` (sql/capture.sql, installed
with the bookkeeping schema), which appends (table, Phase 2 id, bubble_id at the time, operation, time,
transaction) to `{migration}.captured_changes`. The migration's own sessions are marked
(`database.MIGRATING_SETTING`) and never recorded, so a sync, a deletion sweep or a rollback after cutover
is not echoed back to Bubble. Installing twice and removing what is not installed are harmless; removing
keeps what was captured.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import load_order

TRIGGER = "culturebridge_capture"


@dataclass(frozen=True)
class CaptureStatus:
    tables: list[str]  # the Phase 2 tables whose changes are being captured
    changes: int  # captured so far


@dataclass(frozen=True)
class NetChange:
    """What became of one row since a point: the operation the fallback replays."""

    table_name: str
    row_id: int
    bubble_id: str | None  # at its last change: for a delete, the Bubble record to delete
    operation: str  # insert (the row as it is now), update or delete
    last_seq: int


def _tables(db: Phase2Database) -> list[str]:
    return sorted(db.entities[name].table for name in load_order(db.entities))


def install_capture(db: Phase2Database) -> list[str]:
    """Capture the app's changes to every migrated table from now on; the tables, sorted."""
    function = sql.Identifier(db.schemas.migration, "capture_change")
    with db.transaction():
        for table in _tables(db):
            target = sql.Identifier(db.schemas.app, table)
            db.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(TRIGGER), target))
            db.execute(
                sql.SQL(
                    "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
                ).format(sql.Identifier(TRIGGER), target, function)
            )
        db.execute(
            sql.SQL("INSERT INTO {} DEFAULT VALUES ON CONFLICT DO NOTHING").format(db.bookkeeping("capture_started"))
        )
    return _tables(db)


def remove_capture(db: Phase2Database) -> list[str]:
    """Stop capturing (the fallback window is over); what was captured stays. The tables, sorted."""
    with db.transaction():
        for table in _tables(db):
            target = sql.Identifier(db.schemas.app, table)
            db.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(TRIGGER), target))
    return _tables(db)


def capture_status(db: Phase2Database) -> CaptureStatus:
    with db.transaction():
        tables = [
            name
            for (name,) in db.execute(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE t.tgname = %s AND c.relnamespace = %s::regnamespace AND c.relname = ANY(%s) ORDER BY 1",
                (TRIGGER, db.schemas.app, _tables(db)),
            )
        ]
        changes = db.scalar(sql.SQL("SELECT count(*) FROM {}").format(db.bookkeeping("captured_changes")))
    return CaptureStatus(tables, int(changes))  # type: ignore[call-overload]


# Per row, its first and last change after the point: an insert that ends deleted never reached Bubble;
# a row that existed before and ends deleted is a delete; one created since is an insert; else an update.
_NET = """
WITH changes AS (
    SELECT c.* FROM {changes} c LEFT JOIN {applied} a USING (table_name, row_id)
    WHERE c.seq > %(since)s AND c.seq > coalesce(a.applied_seq, 0)
),
first AS (SELECT DISTINCT ON (table_name, row_id) table_name, row_id, operation
          FROM changes ORDER BY table_name, row_id, seq),
last AS (SELECT DISTINCT ON (table_name, row_id) table_name, row_id, operation, bubble_id, seq
         FROM changes ORDER BY table_name, row_id, seq DESC)
SELECT * FROM (
    SELECT l.table_name, l.row_id, l.bubble_id,
           CASE WHEN f.operation = 'insert' AND l.operation = 'delete' THEN NULL
                WHEN f.operation = 'insert' THEN 'insert'
                WHEN l.operation = 'delete' THEN 'delete'
                ELSE 'update' END AS operation,
           l.seq
    FROM last l JOIN first f USING (table_name, row_id)
) net WHERE operation IS NOT NULL ORDER BY seq
"""


def net_changes(db: Phase2Database, since: int = 0) -> list[NetChange]:
    """The net change of each row changed after capture sequence `since` (0: all) and not yet written to Bubble
    by the fallback (its ledger's applied_seq), oldest last change first."""
    query = sql.SQL(_NET).format(changes=db.bookkeeping("captured_changes"), applied=db.bookkeeping("fallback_rows"))
    return [NetChange(*row) for row in db.execute(query, {"since": since})]
