"""Undo one migration run exactly, from the rollback data its loads saved in `row_changes`, or refuse.

One SQL script serves both ways of running it: the `rollback_migration` job executes it, and the
reports write it to a file for `psql "$DATABASE_URL" -f rollback.sql`. In one transaction:
1. rows the run changed get their previous values back (before any delete, so no restored row
   points at a row about to go);
2. rows the run deleted (gone from Bubble) come back with their ids, parents before children;
3. rows the run inserted are deleted, children before parents;
4. the id map, the kept records of unmigrated types, the watermarks and the deletion flags the run
   moved go back to what they were, and the run is marked rolled back.
Before any of it the job looks, in the same transaction, for what the app did since the run (see
`rollback_conflicts`): an edited row, a row of any table pointing at a row to delete. It then refuses
and changes nothing, naming the rows, unless `force` is set; then it goes on and says what it overwrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rollback_conflicts import Conflict, conflicts
from culturebridge_migration.mapping.entities import load_order
from culturebridge_migration.mapping.mapper import row_columns


class RollbackBlocked(RuntimeError):
    """Rollback would break rows that did not come from the migration; nothing was changed."""


# A row the run changed is restored, one it deleted recreated, one it inserted deleted.
_UNDONE_AS = {"update": "restored", "delete": "recreated", "insert": "deleted"}


@dataclass
class RolledBack:
    restored: int  # rows the run changed, given their previous values
    recreated: int  # rows the run deleted, back with their ids
    deleted: int  # rows the run inserted, gone
    overwritten: list[Conflict] = field(default_factory=list)  # with force: what the app had done since
    by_table: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> the three counts

    def counts(self) -> dict[str, int]:
        return {"restored": self.restored, "recreated": self.recreated, "deleted": self.deleted}


def rollback_statements(db: Phase2Database, run_id: str) -> list[str]:
    """The statements that undo `run_id`, as plain SQL text (the run id is a literal)."""
    run = sql.Literal(run_id)
    changes = db.bookkeeping("row_changes")
    parents_first = [db.entities[name] for name in load_order(db.entities)]
    statements: list[sql.Composable] = []
    for entity in parents_first:
        columns = row_columns(entity)
        statements.append(
            sql.SQL(
                "UPDATE {table} AS t SET ({cols}) = (SELECT {old_cols} FROM jsonb_populate_record(NULL::{table}, c.old_row) o)"
                " FROM (SELECT DISTINCT ON (bubble_id) bubble_id, old_row FROM {changes}"
                " WHERE run_id = {run} AND table_name = {name} AND action = 'update' ORDER BY bubble_id, seq) c"
                " WHERE t.bubble_id = c.bubble_id"
            ).format(
                table=db.table(entity),
                cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                old_cols=sql.SQL(", ").join(sql.Identifier("o", c) for c in columns),
                changes=changes,
                run=run,
                name=sql.Literal(entity.table),
            )
        )
    for entity in parents_first:
        statements.append(
            sql.SQL(
                "INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, c.old_row)).*"
                " FROM (SELECT DISTINCT ON (bubble_id) bubble_id, old_row FROM {changes}"
                " WHERE run_id = {run} AND table_name = {name} AND action = 'delete' ORDER BY bubble_id, seq) c"
            ).format(table=db.table(entity), changes=changes, run=run, name=sql.Literal(entity.table))
        )
    for entity in reversed(parents_first):
        statements.append(
            sql.SQL(
                "DELETE FROM {table} t USING {changes} c"
                " WHERE c.run_id = {run} AND c.table_name = {name} AND c.action = 'insert' AND t.bubble_id = c.bubble_id"
            ).format(table=db.table(entity), changes=changes, run=run, name=sql.Literal(entity.table))
        )
    for entity in parents_first:
        # Only the records the run inserted leave the id map: it keeps the ids of deleted ones.
        statements.append(
            sql.SQL(
                "DELETE FROM {id_map} m USING {changes} c WHERE m.entity = {name} AND c.run_id = {run}"
                " AND c.table_name = {table_name} AND c.action = 'insert' AND m.bubble_id = c.bubble_id"
            ).format(
                id_map=db.bookkeeping("id_map"),
                changes=changes,
                run=run,
                name=sql.Literal(entity.name),
                table_name=sql.Literal(entity.table),
            )
        )
    statements += _verbatim_statements(db, run)
    statements.append(
        sql.SQL("DELETE FROM {flags} WHERE run_id = {run}").format(flags=db.bookkeeping("deleted_in_bubble"), run=run)
    )
    statements += _bookkeeping_statements(db, run)
    statements.append(
        sql.SQL("UPDATE {runs} SET rolled_back_at = now() WHERE run_id = {run}").format(
            runs=db.bookkeeping("runs"), run=run
        )
    )
    return [s.as_string() for s in statements]


def _verbatim_statements(db: Phase2Database, run: sql.Literal) -> list[sql.Composable]:
    """The records of unmigrated types the run kept: changed ones get their previous version back, new ones go."""
    kept, changes = db.bookkeeping("bubble_records"), db.bookkeeping("row_changes")
    columns = ("created_at", "modified_at", "record", "run_id")
    key = sql.SQL("t.bubble_type || '/' || t.bubble_id")
    return [
        sql.SQL(
            "UPDATE {kept} AS t SET ({cols}) = (SELECT {old_cols} FROM jsonb_populate_record(NULL::{kept}, c.old_row) o)"
            " FROM (SELECT DISTINCT ON (bubble_id) bubble_id, old_row FROM {changes}"
            " WHERE run_id = {run} AND table_name = 'bubble_records' AND action = 'update' ORDER BY bubble_id, seq) c"
            " WHERE {key} = c.bubble_id"
        ).format(
            kept=kept,
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            old_cols=sql.SQL(", ").join(sql.Identifier("o", c) for c in columns),
            changes=changes,
            run=run,
            key=key,
        ),
        sql.SQL(
            "DELETE FROM {kept} t USING {changes} c WHERE c.run_id = {run} AND c.table_name = 'bubble_records'"
            " AND c.action = 'insert' AND {key} = c.bubble_id"
        ).format(kept=kept, changes=changes, run=run, key=key),
    ]


def _bookkeeping_statements(db: Phase2Database, run: sql.Literal) -> list[sql.Composable]:
    """Watermarks and deletion flags as they were before the run: the next sync asks Bubble for it all again."""
    changes = db.bookkeeping("bookkeeping_changes")
    keys = {"watermarks": sql.SQL("t.entity"), "deleted_in_bubble": sql.SQL("t.entity || '/' || t.bubble_id")}
    statements: list[sql.Composable] = []
    for name, key in keys.items():
        table = db.bookkeeping(name)
        statements += [
            sql.SQL(
                "DELETE FROM {table} t USING {changes} c WHERE c.run_id = {run} AND c.table_name = {name}"
                " AND {key} = c.key"
            ).format(table=table, changes=changes, run=run, name=sql.Literal(name), key=key),
            sql.SQL(
                "INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, c.old_row)).* FROM {changes} c"
                " WHERE c.run_id = {run} AND c.table_name = {name} AND c.old_row IS NOT NULL"
            ).format(table=table, changes=changes, run=run, name=sql.Literal(name)),
        ]
    return statements


def rollback_script(db: Phase2Database, run_id: str) -> str:
    """A psql script that undoes `run_id`: all or nothing."""
    body = ";\n".join(rollback_statements(db, run_id))
    return (
        f"-- Undo CultureBridge migration run {run_id}.\n"
        '-- Run: psql "$DATABASE_URL" -f this_file.sql\n'
        "-- One transaction: if any statement fails (e.g. a row created after the migration references a\n"
        "-- row this run inserted), nothing is changed.\n"
        "\\set ON_ERROR_STOP on\n"
        "BEGIN;\n"
        "SET LOCAL culturebridge.migrating = 'on';  -- the migration's own write: not captured for the fallback\n"
        f"{body};\n"
        "COMMIT;\n"
    )


def last_run(db: Phase2Database) -> str | None:
    """The latest run that changed Phase 2 (its rows or its bookkeeping) and was not rolled back."""
    row = db.execute(
        sql.SQL(
            "SELECT r.run_id FROM {runs} r WHERE r.rolled_back_at IS NULL"
            " AND (EXISTS (SELECT 1 FROM {changes} c WHERE c.run_id = r.run_id)"
            " OR EXISTS (SELECT 1 FROM {kept} k WHERE k.run_id = r.run_id))"
            " ORDER BY r.started_at DESC LIMIT 1"
        ).format(
            runs=db.bookkeeping("runs"),
            changes=db.bookkeeping("row_changes"),
            kept=db.bookkeeping("bookkeeping_changes"),
        )
    ).fetchone()
    return row[0] if row else None


def rollback_run(db: Phase2Database, run_id: str, *, force: bool = False) -> RolledBack:
    """Undo `run_id` in one transaction, or refuse and change nothing (see the module's docstring)."""
    _refuse_unless_latest(db, run_id)
    db.execute(sql.SQL("ANALYZE {}").format(db.bookkeeping("row_changes")))  # big after a first load
    by_table: dict[str, dict[str, int]] = {}
    for table, action, rows in db.execute(
        sql.SQL(
            "SELECT table_name, action, count(DISTINCT bubble_id) FROM {} WHERE run_id = %s GROUP BY 1, 2 ORDER BY 1"
        ).format(db.bookkeeping("row_changes")),
        (run_id,),
    ):
        by_table.setdefault(table, dict.fromkeys(_UNDONE_AS.values(), 0))[_UNDONE_AS[action]] = rows
    try:
        with db.transaction():
            # Nothing else writes meanwhile: the rows checked are the rows changed.
            for entity in db.entities.values():
                db.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(db.table(entity)))
            found = conflicts(db, run_id)
            if found and not force:
                raise RollbackBlocked(
                    f"Rollback of run {run_id} changed nothing: the app changed or depends on rows of that run. "
                    + "; ".join(c.describe() for c in found)
                    + ". Undo or re-point those first, or roll back with force (which overwrites them)."
                )
            for statement in rollback_statements(db, run_id):
                db.execute(statement.encode())
    except psycopg.errors.ForeignKeyViolation as exc:
        detail = exc.diag.message_detail or str(exc)
        raise RollbackBlocked(
            f"Rollback of run {run_id} stopped and changed nothing: rows that did not come from the migration "
            f"reference rows this run inserted ({exc.diag.table_name}: {detail}). "
            "Delete or re-point those rows first, or keep the migrated data."
        ) from None
    total = {undone: sum(counts[undone] for counts in by_table.values()) for undone in _UNDONE_AS.values()}
    return RolledBack(total["restored"], total["recreated"], total["deleted"], found, by_table)


def _refuse_unless_latest(db: Phase2Database, run_id: str) -> None:
    known = db.execute(
        sql.SQL("SELECT rolled_back_at, rehearsal FROM {} WHERE run_id = %s").format(db.bookkeeping("runs")), (run_id,)
    ).fetchone()
    if known is None:
        raise RollbackBlocked(f"No migration run {run_id} in {db.schemas.migration}.runs: nothing to roll back")
    if known[1]:
        raise RollbackBlocked(f"Run {run_id} was a rehearsal (dry run): it changed nothing, there is nothing to undo")
    if known[0] is not None:
        raise RollbackBlocked(f"Run {run_id} was already rolled back at {known[0]:%Y-%m-%d %H:%M:%S %Z}")
    later = last_run(db)
    if later is not None and later != run_id:
        raise RollbackBlocked(
            f"Run {later} changed Phase 2 after run {run_id}: roll back {later} first, so no row is restored "
            "to a state that a later run built on"
        )
