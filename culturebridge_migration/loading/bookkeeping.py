"""What a load writes beside the table: its rejects, its value fixes, and its counts per entity.

The one sequence every load follows (migrate.py, verbatim.py, rehearsal.py): `entity_load` begins the
transaction and registers the run, the load writes its rows, `record_load` replaces what a retried step
recorded before and writes the rejects, the fixes, the counts and the watermark.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def _save_rejects(db: Phase2Database, run_id: str, rejects: Iterable[Reject]) -> None:
    _copy(db, "rejects", _REJECT_COLUMNS, run_id, (tuple(getattr(r, n) for n in REJECT_FIELDS) for r in rejects))


def _save_fixes(db: Phase2Database, run_id: str, fixes: Iterable[ValueFix]) -> None:
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


def _clear_entity_run(db: Phase2Database, run_id: str, entity: Entity) -> None:
    """A step retried within the same run replaces, not adds to, its rejects and fixes."""
    for table in ("rejects", "value_fixes"):
        db.execute(
            sql.SQL("DELETE FROM {} WHERE run_id = %s AND entity = %s").format(db.bookkeeping(table)),
            (run_id, entity.name),
        )


def _save_entity_run(db: Phase2Database, run_id: str, entity: Entity, done: LoadRecord, started_at: datetime) -> None:
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
            done.exported,
            done.result.loaded,
            done.result.inserted,
            done.result.updated,
            done.result.unchanged,
            len(done.rejects),
            started_at,
            done.deleted,
        ),
    )


@contextmanager
def entity_load(db: Phase2Database, run_id: str, job_name: str, *, rehearsal: bool = False) -> Iterator[None]:
    """One transaction for a load and its bookkeeping, the run registered first.

    A rehearsal's run is marked one and rolled back: later runs, the rollback and the deletion census
    pass over it, while the reports read what it would have done.
    """
    with db.transaction():
        if rehearsal:
            db.execute(
                sql.SQL(
                    "INSERT INTO {} (run_id, job_name, rehearsal, rolled_back_at) VALUES (%s, %s, true, now())"
                    " ON CONFLICT (run_id) DO UPDATE SET rehearsal = true, rolled_back_at = now()"
                ).format(db.bookkeeping("runs")),
                (run_id, job_name),
            )
        else:
            db.register_run(run_id, job_name)
        yield


@dataclass(frozen=True)
class LoadRecord:
    """What one load of an entity did, as its bookkeeping keeps it."""

    exported: int
    result: LoadResult
    rejects: list[Reject]
    fixes: list[ValueFix]
    deleted: int = 0  # rows gone from Bubble that the load deleted


def record_load(
    db: Phase2Database,
    run_id: str,
    entity: Entity,
    done: LoadRecord,
    *,
    started_at: datetime,
    watermark: datetime | None = None,
) -> None:
    """What one load of `entity` did, inside `entity_load`: a step retried in the run replaces its record."""
    _clear_entity_run(db, run_id, entity)
    _save_rejects(db, run_id, done.rejects)
    _save_fixes(db, run_id, done.fixes)
    _save_entity_run(db, run_id, entity, done, started_at)
    if watermark is not None:
        db.advance_watermark(entity, watermark, run_id)
