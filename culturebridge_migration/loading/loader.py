"""Mapped rows -> a Phase 2 table: COPY into a staging table, then one upsert by bubble_id.

Everything for one entity happens in one transaction: a run killed mid-load leaves the table as
it was. Before the upsert, the previous version of every row it will change is saved in
`row_changes`, so a rollback can restore exactly what this run touched. Rows whose values did
not change are not written at all, so a re-run on unchanged data writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql
from psycopg.types.json import Jsonb

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity, Kind
from culturebridge_migration.mapping.mapper import row_columns
from culturebridge_migration.mapping.rejects import REJECT_FIELDS, Reject


@dataclass(frozen=True)
class LoadResult:
    loaded: int  # rows of the export now in the table: inserted, updated or unchanged
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.loaded - self.inserted - self.updated


def taken_emails(db: Phase2Database, entity: Entity) -> dict[str, str]:
    """Emails already in Phase 2 and the Bubble id owning each (users only)."""
    columns = [f.column for f in entity.fields if f.kind is Kind.EMAIL]
    if not columns:
        return {}
    owned: dict[str, str] = {}
    for column in columns:
        query = sql.SQL("SELECT lower({}), bubble_id FROM {}").format(sql.Identifier(column), db.table(entity))
        owned.update(db.execute(query))
    return owned


def load_rows(db: Phase2Database, entity: Entity, rows: Iterable[Mapping[str, object]], run_id: str) -> LoadResult:
    """Upsert `rows` into the entity's table; must run inside the caller's transaction.

    `rows` is consumed once, as it is COPYed: a generator mapping records as they stream keeps
    memory flat however large the table.
    """
    columns = row_columns(entity)
    table = db.table(entity)
    if _claim_empty_table(db, table):
        return _first_load(db, entity, rows, run_id)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    db.execute(
        sql.SQL("CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA").format(
            cols=cols, table=table
        )
    )
    staged = _copy_rows(db, columns, rows)
    changed = sql.SQL("({t}) IS DISTINCT FROM ({s})").format(
        t=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
        s=sql.SQL(", ").join(sql.Identifier("s", c) for c in columns),
    )
    inserted, updated = db.execute(
        sql.SQL(
            "WITH saved AS ("
            " INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row)"
            " SELECT %(run)s, %(table)s, s.bubble_id,"
            "        CASE WHEN t.id IS NULL THEN 'insert' ELSE 'update' END,"
            "        CASE WHEN t.id IS NULL THEN NULL ELSE to_jsonb(t) END"
            " FROM stage s LEFT JOIN {table} t USING (bubble_id)"
            " WHERE t.id IS NULL OR {changed}"
            " RETURNING action)"
            " SELECT count(*) FILTER (WHERE action = 'insert'), count(*) FILTER (WHERE action = 'update') FROM saved"
        ).format(changes=db.bookkeeping("row_changes"), table=table, changed=changed),
        {"run": run_id, "table": entity.table},
    ).fetchone()
    db.execute(
        sql.SQL(
            "INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM stage"
            " ON CONFLICT (bubble_id) DO UPDATE SET {assign}"
            " WHERE ({tcols}) IS DISTINCT FROM ({ecols})"
        ).format(
            table=table,
            cols=cols,
            assign=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns),
            tcols=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
            ecols=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in columns),
        )
    )
    _map_ids(db, entity, sql.SQL("stage s JOIN {} t USING (bubble_id)").format(table), run_id)
    db.execute("DROP TABLE stage")
    return LoadResult(staged, inserted, updated)


def _claim_empty_table(db: Phase2Database, table: sql.Composable) -> bool:
    """True when the table holds no row, and then keeps other writers out of it until the load commits.

    The lock (SHARE ROW EXCLUSIVE: readers and foreign-key checks go on, writers wait) is taken only
    for an empty table, which no application uses yet, and makes "empty" still true when the rows go in.
    """
    is_empty = sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(table)
    if not db.scalar(is_empty):
        return False
    db.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table))
    return bool(db.scalar(is_empty))


def _first_load(db: Phase2Database, entity: Entity, rows: Iterable[Mapping[str, object]], run_id: str) -> LoadResult:
    """Load into an empty table (locked by `_claim_empty_table`): every row is an insert.

    The same rows, row history and id map as the upsert, but the rows are copied straight into the
    table: no staging table, no upsert, no join. Every row of the table is then one of this run.
    """
    table = db.table(entity)
    copied = _copy_rows(db, row_columns(entity), rows, table)
    db.execute(
        sql.SQL(
            "INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row)"
            " SELECT %(run)s, %(table)s, t.bubble_id, 'insert', NULL FROM {table} t"
        ).format(changes=db.bookkeeping("row_changes"), table=table),
        {"run": run_id, "table": entity.table},
    )
    _map_ids(db, entity, sql.SQL("{} t").format(table), run_id)
    return LoadResult(copied, copied, 0)


def _map_ids(db: Phase2Database, entity: Entity, loaded: sql.Composable, run_id: str) -> None:
    """Record (bubble_id -> id, this run) for every loaded row; `loaded` names the rows as `t`.

    An update of the records the id map knows and an insert of the others: the same rows as
    INSERT ... ON CONFLICT DO UPDATE, without its per-row speculative insertion (half the cost).
    """
    id_map = db.bookkeeping("id_map")
    params = {"entity": entity.name, "run": run_id}
    db.execute(
        sql.SQL(
            "UPDATE {id_map} m SET phase2_id = t.id, run_id = %(run)s FROM {loaded}"
            " WHERE m.entity = %(entity)s AND m.bubble_id = t.bubble_id"
            " AND (m.phase2_id, m.run_id) IS DISTINCT FROM (t.id, %(run)s)"
        ).format(id_map=id_map, loaded=loaded),
        params,
    )
    db.execute(
        sql.SQL(
            "INSERT INTO {id_map} (entity, bubble_id, phase2_id, run_id)"
            " SELECT %(entity)s, t.bubble_id, t.id, %(run)s FROM {loaded}"
            " WHERE NOT EXISTS (SELECT FROM {id_map} m WHERE m.entity = %(entity)s AND m.bubble_id = t.bubble_id)"
        ).format(id_map=id_map, loaded=loaded),
        params,
    )


_STAGE = sql.Identifier("stage")


def _copy_rows(
    db: Phase2Database,
    columns: list[str],
    rows: Iterable[Mapping[str, object]],
    target: sql.Composable = _STAGE,
) -> int:
    """COPY (binary) `rows` into `columns` of `target`: the staging table, or a table being first loaded.

    Returns how many rows were copied.
    """
    type_oids = [
        oid
        for (oid,) in db.execute(
            "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
            " AND attname = ANY(%s) ORDER BY array_position(%s, attname::text)",
            (target.as_string(), columns, columns),
        )
    ]
    json_columns = [i for i, oid in enumerate(type_oids) if oid in (114, 3802)]  # json, jsonb
    with db.conn.cursor().copy(
        sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            target, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
    ) as copy:
        copy.set_types(type_oids)
        write_row = copy.write_row
        count = 0
        for row in rows:
            values = [row[c] for c in columns]
            for i in json_columns:
                if values[i] is not None:
                    values[i] = Jsonb(values[i])
            write_row(values)
            count += 1
    return count


_REJECT_COLUMNS = sql.SQL(", ").join(
    sql.Identifier("column_name" if name == "column" else name) for name in REJECT_FIELDS
)


def save_rejects(db: Phase2Database, run_id: str, rejects: Iterable[Reject]) -> None:
    query = sql.SQL("COPY {} (run_id, {}) FROM STDIN").format(db.bookkeeping("rejects"), _REJECT_COLUMNS)
    with db.conn.cursor().copy(query) as copy:
        for r in rejects:
            copy.write_row((run_id, *(getattr(r, name) for name in REJECT_FIELDS)))


def read_rejects(db: Phase2Database, run_id: str) -> list[Reject]:
    """A run's rejects, by entity and Bubble id."""
    query = sql.SQL("SELECT {} FROM {} WHERE run_id = %s ORDER BY entity, bubble_id").format(
        _REJECT_COLUMNS, db.bookkeeping("rejects")
    )
    return [Reject(*row) for row in db.execute(query, (run_id,))]


def clear_rejects(db: Phase2Database, run_id: str, entity: Entity) -> None:
    """A step retried within the same run replaces, not adds to, its rejects."""
    db.execute(
        sql.SQL("DELETE FROM {} WHERE run_id = %s AND entity = %s").format(db.bookkeeping("rejects")),
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
