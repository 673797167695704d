"""Bubble types no table migrates, kept verbatim in `{migration}.bubble_records`: one jsonb row per record.

Nothing of the app is left behind on Bubble. The records are upserted by (type, _id) like a table's
rows, with the same row history (a rollback undoes them too) and the same rules for what cannot be
stored: NUL characters are removed and recorded, a record without a usable _id or with a lone
surrogate is a reject with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from psycopg import sql

from culturebridge_migration.loading import bookkeeping
from culturebridge_migration.loading.loader import LoadResult, copy_in_batches
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import CREATED_KEY, ID_KEY, MODIFIED_KEY, UNREADABLE_KEY, Entity
from culturebridge_migration.mapping.fixes import NUL_REMOVED, ValueFix
from culturebridge_migration.mapping.rejects import Reject, RejectReason, printable
from culturebridge_migration.mapping.values import (
    MAX_JSON_DEPTH,
    UnstorableText,
    bubble_id_problem,
    format_bubble_datetime,
    nesting_depth,
    parse_datetime,
    too_deep,
    without_nul,
)

TABLE = "bubble_records"
_COLUMNS = ("bubble_type", "bubble_id", "created_at", "modified_at", "record")


def keep_verbatim(
    db: Phase2Database, entity: Entity, records: Iterable[dict], run_id: str
) -> tuple[LoadResult, list[Reject], list[ValueFix], int]:
    """Upsert the records of an unmigrated type; returns (counts, rejects, fixes, records read)."""
    rows, rejects, fixes, read = [], [], [], 0
    for record in records:
        read += 1
        row = _row(entity, record, rejects, fixes)
        if row is not None:
            rows.append(row)
    db.execute(
        sql.SQL("CREATE TEMP TABLE kept ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)), db.bookkeeping(TABLE)
        )
    )
    _, refused = copy_in_batches(db, list(_COLUMNS), rows, sql.Identifier("kept"))
    rejects += [_refused(entity, row, error) for row, error in refused]
    inserted, updated = _upsert(db, entity, run_id)
    loaded = db.scalar("SELECT count(*) FROM kept")
    db.execute("DROP TABLE kept")
    return LoadResult(int(loaded), inserted, updated), rejects, fixes, read  # type: ignore[arg-type]


def _row(entity: Entity, record: dict, rejects: list[Reject], fixes: list[ValueFix]) -> dict | None:
    bubble_id = record.get(ID_KEY)
    problem = bubble_id_problem(bubble_id) or _unkeepable(record)
    if problem is None:
        try:
            cleaned = without_nul(record)
        except UnstorableText as exc:
            problem = f"a value {exc}"
    if problem is not None:
        rejects.append(
            Reject(
                entity.name,
                printable(bubble_id),
                ID_KEY,
                "record",
                None,
                RejectReason.INVALID_VALUE.value,
                f"{problem}; correct it in Bubble",
                _created_text(record.get(CREATED_KEY)),
            )
        )
        return None
    if cleaned is not record:
        fixes.append(
            ValueFix(entity.name, bubble_id, "(record)", "record", printable(record), printable(cleaned), NUL_REMOVED)
        )
    created, modified = _date(record.get(CREATED_KEY)), _date(record.get(MODIFIED_KEY))
    return dict(zip(_COLUMNS, (entity.bubble_type, bubble_id, created, modified, cleaned), strict=True))


def _unkeepable(record: dict) -> str | None:
    """Why the record cannot be kept as it is: the export's stand-in, or a value nested past the limit."""
    note = record.get(UNREADABLE_KEY)
    if note is not None:
        return printable(note.get("message") if isinstance(note, dict) else note, 1_000)
    for key, value in record.items():
        if (depth := nesting_depth(value)) > MAX_JSON_DEPTH:
            return f"{printable(key)} {too_deep(depth)}"
    return None


def _created_text(value: object) -> str | None:
    created = _date(value)
    return format_bubble_datetime(created) if created else None


def _date(value: object) -> datetime | None:
    if isinstance(value, list | dict):
        return None  # not a date, and perhaps nested too deep to name in an error
    try:
        return parse_datetime(value)
    except ValueError:
        return None  # kept anyway: the record is what matters, its dates are in it


def _refused(entity: Entity, row: dict, error: Exception) -> Reject:
    words = getattr(getattr(error, "diag", None), "message_primary", None) or str(error)
    return Reject(
        entity.name,
        printable(str(row["bubble_id"])),
        ID_KEY,
        "record",
        None,
        RejectReason.REFUSED_BY_DATABASE.value,
        f"PostgreSQL refused the record: {words}",
        format_bubble_datetime(row["created_at"]) if row.get("created_at") else None,
    )


def _upsert(db: Phase2Database, entity: Entity, run_id: str) -> tuple[int, int]:
    """Save the previous version of every kept record this run changes, then write them."""
    table = db.bookkeeping(TABLE)
    params = {"run": run_id, "table": TABLE}
    inserted, updated = db.execute(
        sql.SQL(
            "WITH saved AS ("
            " INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row)"
            " SELECT %(run)s, %(table)s, k.bubble_type || '/' || k.bubble_id,"
            "        CASE WHEN t.bubble_id IS NULL THEN 'insert' ELSE 'update' END,"
            "        CASE WHEN t.bubble_id IS NULL THEN NULL ELSE to_jsonb(t) END"
            " FROM kept k LEFT JOIN {table} t USING (bubble_type, bubble_id)"
            " WHERE t.bubble_id IS NULL OR t.record IS DISTINCT FROM k.record"
            " RETURNING action)"
            " SELECT count(*) FILTER (WHERE action = 'insert'), count(*) FILTER (WHERE action = 'update') FROM saved"
        ).format(changes=db.bookkeeping("row_changes"), table=table),
        params,
    ).fetchone()
    db.execute(
        sql.SQL(
            "INSERT INTO {table} AS t (bubble_type, bubble_id, created_at, modified_at, record, run_id)"
            " SELECT bubble_type, bubble_id, created_at, modified_at, record, %(run)s FROM kept"
            " ON CONFLICT (bubble_type, bubble_id) DO UPDATE SET created_at = EXCLUDED.created_at,"
            " modified_at = EXCLUDED.modified_at, record = EXCLUDED.record, run_id = EXCLUDED.run_id"
            " WHERE t.record IS DISTINCT FROM EXCLUDED.record"
        ).format(table=table),
        params,
    )
    return inserted, updated


def migrate_verbatim(
    db: Phase2Database,
    entity: Entity,
    records: Iterable[dict],
    *,
    run_id: str,
    job_name: str,
    watermark: datetime | None,
    started: datetime,
) -> tuple[LoadResult, list[Reject], int]:
    """One unmigrated type's export into bubble_records, in one transaction with its bookkeeping."""
    with bookkeeping.entity_load(db, run_id, job_name):
        result, rejects, fixes, read = keep_verbatim(db, entity, records, run_id)
        done = bookkeeping.LoadRecord(read, result, rejects, fixes)
        bookkeeping.record_load(db, run_id, entity, done, started_at=started, watermark=watermark)
    return result, rejects, read
