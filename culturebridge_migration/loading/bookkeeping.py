"""What a load writes beside the table: its rejects, its value fixes, and its counts per entity."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from psycopg import sql

from culturebridge_migration.loading.loader import LoadResult
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity
from culturebridge_migration.mapping.fixes import VALUE_FIX_FIELDS, ValueFix
from culturebridge_migration.mapping.rejects import REJECT_FIELDS, Reject


def _columns(fields: tuple[str, ...]) -> sql.Composable:
    # `column` is a reserved word: the tables say column_name.
    return sql.SQL(", ").join(sql.Identifier("column_name" if name == "column" else name) for name in fields)


_REJECT_COLUMNS = _columns(REJECT_FIELDS)
_FIX_COLUMNS = _columns(VALUE_FIX_FIELDS)


def _copy(db: Phase2Database, table: str, columns: sql.Composable, run_id: str, rows: Iterable[tuple]) -> None:
    query = sql.SQL("COPY {} (run_id, {}) FROM STDIN").format(db.bookkeeping(table), columns)
    with db.conn.cursor().copy(query) as copy:
        for row in rows:
            copy.write_row((run_id, *row))


def save_rejects(db: Phase2Database, run_id: str, rejects: Iterable[Reject]) -> None:
    _copy(db, "rejects", _REJECT_COLUMNS, run_id, (tuple(getattr(r, n) for n in REJECT_FIELDS) for r in rejects))


def save_fixes(db: Phase2Database, run_id: str, fixes: Iterable[ValueFix]) -> None:
    _copy(db, "value_fixes", _FIX_COLUMNS, run_id, (tuple(getattr(f, n) for n in VALUE_FIX_FIELDS) for f in fixes))


def read_rejects(db: Phase2Database, run_id: str) -> list[Reject]:
    """A run's rejects, by entity and Bubble id."""
    query = sql.SQL("SELECT {} FROM {} WHERE run_id = %s ORDER BY entity, bubble_id").format(
        _REJECT_COLUMNS, db.bookkeeping("rejects")
    )
    return [Reject(*row) for row in db.execute(query, (run_id,))]


def read_fixes(db: Phase2Database, run_id: str) -> list[ValueFix]:
    """A run's value fixes, by entity and Bubble id."""
    query = sql.SQL("SELECT {} FROM {} WHERE run_id = %s ORDER BY entity, bubble_id, field").format(
        _FIX_COLUMNS, db.bookkeeping("value_fixes")
    )
    return [ValueFix(*row) for row in db.execute(query, (run_id,))]


def clear_entity_run(db: Phase2Database, run_id: str, entity: Entity) -> None:
    """A step retried within the same run replaces, not adds to, its rejects and fixes."""
    for table in ("rejects", "value_fixes"):
        db.execute(
            sql.SQL("DELETE FROM {} WHERE run_id = %s AND entity = %s").format(db.bookkeeping(table)),
            (run_id, entity.name),
        )


def save_entity_run(
    db: Phase2Database,
    run_id: str,
    entity: Entity,
    *,
    exported: int,
    result: LoadResult,
    rejected: int,
    started_at: datetime,
    deleted: int = 0,
) -> None:
    db.execute(
        sql.SQL(
            "INSERT INTO {} (run_id, entity, exported, loaded, inserted, updated, unchanged, rejected, started_at,"
            " deleted) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, entity) DO UPDATE SET exported = EXCLUDED.exported, loaded = EXCLUDED.loaded,"
            " inserted = EXCLUDED.inserted, updated = EXCLUDED.updated, unchanged = EXCLUDED.unchanged,"
            " rejected = EXCLUDED.rejected, started_at = EXCLUDED.started_at, deleted = EXCLUDED.deleted,"
            " finished_at = clock_timestamp()"
        ).format(db.bookkeeping("entity_runs")),
        (
            run_id,
            entity.name,
            exported,
            result.loaded,
            result.inserted,
            result.updated,
            result.unchanged,
            rejected,
            started_at,
            deleted,
        ),
    )
