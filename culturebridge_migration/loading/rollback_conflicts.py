"""What a rollback would break: rows the app edited since the run, and rows of any table that point at rows
the rollback would delete, whatever their foreign key's ON DELETE says.

Phase 2 is not the migration's alone: after cutover the app writes to it. A plain foreign key would stop a
delete, but ON DELETE CASCADE would silently delete the app's rows and ON DELETE SET NULL unlink them, and
an app's edit to a migrated row would be overwritten by the restore. So every such case is looked for
first, in the rollback's own transaction, and named: table, column, and the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import sql

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Conflict:
    table: str  # the table whose rows are in the way
    rows: int
    sample: tuple[str, ...]
    what: str  # what is the matter, in words a person can act on

    def describe(self) -> str:
        return f"{self.table}: {self.rows} {self.what} (e.g. {', '.join(self.sample)})"


def conflicts(db: Phase2Database, run_id: str) -> list[Conflict]:
    """Every reason undoing `run_id` would change or lose something the app did after it."""
    found: list[Conflict] = []
    for entity in db.entities.values():
        found += _edited_since(db, entity, run_id)
        found += _gone_since(db, entity, run_id)
        found += _back_since(db, entity, run_id)
        found += _referenced(db, entity, run_id)
    return found


def _latest(db: Phase2Database, entity: Entity, run_id: str, actions: str) -> sql.Composable:
    """The run's last change of each row of `entity`, for the given actions."""
    return sql.SQL(
        "(SELECT DISTINCT ON (bubble_id) bubble_id, action, new_hash FROM {changes}"
        " WHERE run_id = {run} AND table_name = {table} AND action IN ({actions}) ORDER BY bubble_id, seq DESC)"
    ).format(
        changes=db.bookkeeping("row_changes"),
        run=sql.Literal(run_id),
        table=sql.Literal(entity.table),
        actions=sql.SQL(actions),
    )


def _conflict(db: Phase2Database, query: sql.Composable, table: str, what: str) -> Iterator[Conflict]:
    ids = [row[0] for row in db.execute(query)]
    if ids:
        yield Conflict(table, len(ids), tuple(ids[:SAMPLE_ROWS]), what)


def _edited_since(db: Phase2Database, entity: Entity, run_id: str) -> Iterator[Conflict]:
    query = sql.SQL(
        "SELECT c.bubble_id FROM {latest} c JOIN {table} t USING (bubble_id)"
        " WHERE c.new_hash IS NOT NULL AND md5(to_jsonb(t)::text) <> c.new_hash ORDER BY 1"
    ).format(latest=_latest(db, entity, run_id, "'insert', 'update'"), table=db.table(entity))
    yield from _conflict(db, query, entity.table, "rows changed since the run wrote them (the restore would undo it)")


def _gone_since(db: Phase2Database, entity: Entity, run_id: str) -> Iterator[Conflict]:
    query = sql.SQL(
        "SELECT c.bubble_id FROM {latest} c LEFT JOIN {table} t USING (bubble_id) WHERE t.id IS NULL ORDER BY 1"
    ).format(latest=_latest(db, entity, run_id, "'update'"), table=db.table(entity))
    yield from _conflict(db, query, entity.table, "rows the run changed and someone deleted since (nothing to restore)")


def _back_since(db: Phase2Database, entity: Entity, run_id: str) -> Iterator[Conflict]:
    query = sql.SQL("SELECT c.bubble_id FROM {latest} c JOIN {table} t USING (bubble_id) ORDER BY 1").format(
        latest=_latest(db, entity, run_id, "'delete'"), table=db.table(entity)
    )
    yield from _conflict(db, query, entity.table, "rows the run deleted that exist again (they cannot be recreated)")


def _referenced(db: Phase2Database, entity: Entity, run_id: str) -> Iterator[Conflict]:
    """Rows of any table pointing at rows the rollback deletes, unless the rollback deletes them too."""
    inserted = _latest(db, entity, run_id, "'insert'")
    for schema, table, column, action in _foreign_keys(db, entity):
        child = f"{schema}.{table}"
        ours = schema == db.schemas.app
        child_entity = next((e for e in db.entities.values() if ours and e.table == table), None)
        # A child the rollback deletes itself (inserted by the same run) is no conflict.
        spared = (
            sql.SQL(" AND c.bubble_id NOT IN (SELECT bubble_id FROM {} x)").format(
                _latest(db, child_entity, run_id, "'insert'")
            )
            if child_entity
            else sql.SQL("")
        )
        query = sql.SQL(
            "SELECT DISTINCT p.bubble_id FROM {child} c JOIN {parent} p ON c.{column} = p.id"
            " JOIN {inserted} i ON i.bubble_id = p.bubble_id WHERE true{spared} ORDER BY 1"
        ).format(
            child=sql.Identifier(schema, table),
            parent=db.table(entity),
            column=sql.Identifier(column),
            inserted=inserted,
            spared=spared,
        )
        effect = {"c": "would delete them (ON DELETE CASCADE)", "n": "would unlink them (ON DELETE SET NULL)"}
        what = f"rows this run inserted are referenced by {child}.{column}; deleting them {effect.get(action, 'is refused')}"
        yield from _conflict(db, query, entity.table, what)


def _foreign_keys(db: Phase2Database, entity: Entity) -> list[tuple[str, str, str, str]]:
    """(schema, table, column, ON DELETE action) of every single-column foreign key to the entity's table."""
    return db.execute(
        "SELECT n.nspname, t.relname, a.attname, c.confdeltype FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
        " WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND array_length(c.conkey, 1) = 1 ORDER BY 1, 2, 3",
        (db.table(entity).as_string(),),
    ).fetchall()
