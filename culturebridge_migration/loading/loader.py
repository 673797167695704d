"""Mapped rows -> a Phase 2 table: COPY into a staging table, then one upsert by bubble_id.

Everything for one entity happens in one transaction: a run killed mid-load leaves the table as
it was. Before the upsert, the previous version of every row it will change is saved in
`row_changes`, so a rollback can restore exactly what this run touched. Rows whose values did
not change are not written at all, so a re-run on unchanged data writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from culturebridge_migration.mapping.entities import Entity
from culturebridge_migration.mapping.mapper import RefLookup, row_columns
from culturebridge_migration.mapping.rejects import Reject
from culturebridge_migration.mapping.values import format_bubble_datetime


@dataclass(frozen=True)
class Schemas:
    app: str = "public"
    migration: str = "migration"

    def table(self, entity: Entity) -> sql.Composed:
        return sql.Identifier(self.app, entity.table)

    def bookkeeping(self, name: str) -> sql.Composed:
        return sql.Identifier(self.migration, name)


@dataclass(frozen=True)
class LoadResult:
    staged: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.staged - self.inserted - self.updated


def register_run(conn: psycopg.Connection, schemas: Schemas, run_id: str, job_name: str) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} (run_id, job_name) VALUES (%s, %s) ON CONFLICT (run_id) DO NOTHING").format(
            schemas.bookkeeping("runs")
        ),
        (run_id, job_name),
    )


def reference_lookups(
    conn: psycopg.Connection,
    schemas: Schemas,
    entities: Mapping[str, Entity],
    entity: Entity,
    only: Mapping[str, Collection[str]] | None = None,
) -> dict[str, RefLookup]:
    """For each entity `entity` references: Phase 2 ids by bubble_id, and the latest rejects.

    `only` limits each referenced entity to the Bubble ids given (a sample needs a few, not all).
    """
    lookups = {}
    for name in entity.upstream:
        wanted = sql.SQL("")
        params: tuple = ()
        if only is not None:
            wanted, params = sql.SQL(" AND bubble_id = ANY(%s)"), (list(only.get(name, ())),)
        ids = dict(
            conn.execute(
                sql.SQL("SELECT bubble_id, id FROM {} WHERE true{}").format(schemas.table(entities[name]), wanted),
                params,
            )
        )
        # The latest reject of each record not loaded, from any run that was not rolled back.
        rejected = dict(
            conn.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (x.bubble_id) x.bubble_id, x.reason FROM {rejects} x"
                    " JOIN {runs} r USING (run_id) WHERE x.entity = %s AND r.rolled_back_at IS NULL{wanted}"
                    " ORDER BY x.bubble_id, r.started_at DESC"
                ).format(rejects=schemas.bookkeeping("rejects"), runs=schemas.bookkeeping("runs"), wanted=wanted),
                (name, *params),
            )
        )
        lookups[name] = RefLookup(ids, rejected)
    return lookups


def taken_emails(conn: psycopg.Connection, schemas: Schemas, entity: Entity) -> dict[str, str]:
    """Emails already in Phase 2 and the Bubble id owning each (users only)."""
    if not any(f.column == "email" for f in entity.fields):
        return {}
    return dict(conn.execute(sql.SQL("SELECT lower(email), bubble_id FROM {}").format(schemas.table(entity))))


def load_rows(
    conn: psycopg.Connection, schemas: Schemas, entity: Entity, rows: Iterable[Mapping[str, object]], run_id: str
) -> LoadResult:
    """Upsert `rows` into the entity's table; must run inside the caller's transaction.

    `rows` is consumed once, as it is COPYed: a generator mapping records as they stream keeps
    memory flat however large the table.
    """
    columns = row_columns(entity)
    table = schemas.table(entity)
    if _claim_empty_table(conn, table):
        return _first_load(conn, schemas, entity, rows, run_id)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA").format(
            cols=cols, table=table
        )
    )
    staged = _copy_rows(conn, columns, rows)
    changed = sql.SQL("({t}) IS DISTINCT FROM ({s})").format(
        t=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
        s=sql.SQL(", ").join(sql.Identifier("s", c) for c in columns),
    )
    inserted, updated = conn.execute(
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
        ).format(changes=schemas.bookkeeping("row_changes"), table=table, changed=changed),
        {"run": run_id, "table": entity.table},
    ).fetchone()
    conn.execute(
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
    _map_ids(conn, schemas, entity, sql.SQL("stage s JOIN {} t USING (bubble_id)").format(table), run_id)
    conn.execute("DROP TABLE stage")
    return LoadResult(staged, inserted, updated)


def _claim_empty_table(conn: psycopg.Connection, table: sql.Composed) -> bool:
    """True when the table holds no row, and then keeps other writers out of it until the load commits.

    The lock (SHARE ROW EXCLUSIVE: readers and foreign-key checks go on, writers wait) is taken only
    for an empty table, which no application uses yet, and makes "empty" still true when the rows go in.
    """
    is_empty = sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(table)
    if not conn.execute(is_empty).fetchone()[0]:
        return False
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table))
    return bool(conn.execute(is_empty).fetchone()[0])


def _first_load(
    conn: psycopg.Connection, schemas: Schemas, entity: Entity, rows: Iterable[Mapping[str, object]], run_id: str
) -> LoadResult:
    """Load into an empty table (locked by `_claim_empty_table`): every row is an insert.

    The same rows, row history and id map as the upsert, but the rows are copied straight into the
    table: no staging table, no upsert, no join. Every row of the table is then one of this run.
    """
    table = schemas.table(entity)
    copied = _copy_rows(conn, row_columns(entity), rows, table)
    conn.execute(
        sql.SQL(
            "INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row)"
            " SELECT %(run)s, %(table)s, t.bubble_id, 'insert', NULL FROM {table} t"
        ).format(changes=schemas.bookkeeping("row_changes"), table=table),
        {"run": run_id, "table": entity.table},
    )
    _map_ids(conn, schemas, entity, sql.SQL("{} t").format(table), run_id)
    return LoadResult(copied, copied, 0)


def _map_ids(conn: psycopg.Connection, schemas: Schemas, entity: Entity, loaded: sql.Composable, run_id: str) -> None:
    """Record (bubble_id -> id, this run) for every loaded row; `loaded` names the rows as `t`.

    An update of the records the id map knows and an insert of the others: the same rows as
    INSERT ... ON CONFLICT DO UPDATE, without its per-row speculative insertion (half the cost).
    """
    id_map = schemas.bookkeeping("id_map")
    params = {"entity": entity.name, "run": run_id}
    conn.execute(
        sql.SQL(
            "UPDATE {id_map} m SET phase2_id = t.id, run_id = %(run)s FROM {loaded}"
            " WHERE m.entity = %(entity)s AND m.bubble_id = t.bubble_id"
            " AND (m.phase2_id, m.run_id) IS DISTINCT FROM (t.id, %(run)s)"
        ).format(id_map=id_map, loaded=loaded),
        params,
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {id_map} (entity, bubble_id, phase2_id, run_id)"
            " SELECT %(entity)s, t.bubble_id, t.id, %(run)s FROM {loaded}"
            " WHERE NOT EXISTS (SELECT FROM {id_map} m WHERE m.entity = %(entity)s AND m.bubble_id = t.bubble_id)"
        ).format(id_map=id_map, loaded=loaded),
        params,
    )


_STAGE = sql.Identifier("stage")


def _copy_rows(
    conn: psycopg.Connection,
    columns: list[str],
    rows: Iterable[Mapping[str, object]],
    target: sql.Composable = _STAGE,
) -> int:
    """COPY (binary) `rows` into `columns` of `target`: the staging table, or a table being first loaded.

    Returns how many rows were copied.
    """
    type_oids = [
        oid
        for (oid,) in conn.execute(
            "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
            " AND attname = ANY(%s) ORDER BY array_position(%s, attname::text)",
            (target.as_string(conn), columns, columns),
        )
    ]
    json_columns = [i for i, oid in enumerate(type_oids) if oid in (114, 3802)]  # json, jsonb
    with conn.cursor().copy(
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


def save_rejects(conn: psycopg.Connection, schemas: Schemas, run_id: str, rejects: Iterable[Reject]) -> None:
    with conn.cursor().copy(
        sql.SQL("COPY {} (run_id, entity, bubble_id, column_name, field, value, reason, message) FROM STDIN").format(
            schemas.bookkeeping("rejects")
        )
    ) as copy:
        for r in rejects:
            copy.write_row((run_id, r.entity, r.bubble_id, r.column, r.field, r.value, r.reason, r.message))


def clear_rejects(conn: psycopg.Connection, schemas: Schemas, run_id: str, entity: Entity) -> None:
    """A step retried within the same run replaces, not adds to, its rejects."""
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE run_id = %s AND entity = %s").format(schemas.bookkeeping("rejects")),
        (run_id, entity.name),
    )


def save_entity_run(
    conn: psycopg.Connection,
    schemas: Schemas,
    run_id: str,
    entity: Entity,
    *,
    exported: int,
    result: LoadResult,
    rejected: int,
    started_at: datetime,
    deleted: int = 0,
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_id, entity, exported, loaded, inserted, updated, unchanged, rejected, started_at,"
            " deleted) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, entity) DO UPDATE SET exported = EXCLUDED.exported, loaded = EXCLUDED.loaded,"
            " inserted = EXCLUDED.inserted, updated = EXCLUDED.updated, unchanged = EXCLUDED.unchanged,"
            " rejected = EXCLUDED.rejected, started_at = EXCLUDED.started_at, deleted = EXCLUDED.deleted,"
            " finished_at = clock_timestamp()"
        ).format(schemas.bookkeeping("entity_runs")),
        (
            run_id,
            entity.name,
            exported,
            result.staged,
            result.inserted,
            result.updated,
            result.unchanged,
            rejected,
            started_at,
            deleted,
        ),
    )


def read_watermark(conn: psycopg.Connection, schemas: Schemas, entity: Entity) -> datetime | None:
    row = conn.execute(
        sql.SQL("SELECT modified_until FROM {} WHERE entity = %s").format(schemas.bookkeeping("watermarks")),
        (entity.name,),
    ).fetchone()
    return row[0] if row else None


def advance_watermark(
    conn: psycopg.Connection, schemas: Schemas, entity: Entity, modified_until: datetime, run_id: str
) -> None:
    """Called in the load's transaction: the watermark moves only if the load commits."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} AS w (entity, modified_until, run_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (entity) DO UPDATE SET modified_until = greatest(w.modified_until, EXCLUDED.modified_until),"
            " run_id = EXCLUDED.run_id, updated_at = now()"
        ).format(schemas.bookkeeping("watermarks")),
        (entity.name, modified_until, run_id),
    )


def known_password_hashes(conn: psycopg.Connection, schemas: Schemas, entity: Entity) -> dict[tuple[str, str], str]:
    """(bubble_id, Modified Date as Bubble writes it) -> the password hash Phase 2 holds for that version."""
    if not any(f.column == "password_hash" for f in entity.fields):
        return {}
    rows = conn.execute(
        sql.SQL("SELECT bubble_id, updated_at, password_hash FROM {} WHERE password_hash IS NOT NULL").format(
            schemas.table(entity)
        )
    )
    return {(bubble_id, format_bubble_datetime(updated)): hashed for bubble_id, updated, hashed in rows}
