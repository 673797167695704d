"""Mapped rows -> a Phase 2 table: COPY into a staging table, then one upsert by bubble_id.

Everything for one entity happens in one transaction: a run killed mid-load leaves the table as
it was. Before the upsert, the previous version of every row it will change is saved in
`row_changes` (and a hash of the version it leaves), so a rollback can restore exactly what this
run touched and see what the app changed since. Rows whose values did not change are not written
at all, so a re-run on unchanged data writes nothing. Rows PostgreSQL refuses are set aside with
its reason (`isolation`); the rest load. The table and the id map are analyzed at the end when the load
changed enough of them, so what runs next plans on the rows that are there, not on statistics from
before a bulk load.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from psycopg import sql
from psycopg.types.json import Jsonb

from culturebridge_migration.loading.isolation import isolate
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity, Kind
from culturebridge_migration.mapping.mapper import row_columns
from culturebridge_migration.mapping.passwords import HASH_FROM_MIGRATION, KEPT_PASSWORD_COLUMNS


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


@dataclass
class Load:
    """What one load did: its counts, and the rows PostgreSQL refused (each with its error)."""

    result: LoadResult
    refused: list[tuple[dict[str, object], Exception]] = field(default_factory=list)


def load_rows(db: Phase2Database, entity: Entity, rows: Iterable[dict[str, object]], run_id: str) -> Load:
    """Upsert `rows` into the entity's table; must run inside the caller's transaction.

    `rows` is consumed once, a batch of `BATCH_ROWS` at a time: a generator mapping records as they
    stream keeps memory at one batch however large the table. A row PostgreSQL refuses is set
    aside with its error (see `isolation`); every other row loads.
    """
    table = db.table(entity)
    load_into = _first_load if _claim_empty_table(db, table) else _upsert
    load = load_into(db, entity, rows, run_id)
    if _plans_may_move(db, table, load.result.inserted + load.result.updated):  # the checks and the sweep
        db.execute(sql.SQL("ANALYZE {}").format(table))  # plan on what is there now
        # With it, the id map: it holds every table's rows, so a table's first load may be far below 10% of
        # it, yet statistics without that table's rows planned a nested loop over its 50k (70 s).
        db.execute(sql.SQL("ANALYZE {}").format(db.bookkeeping("id_map")))
    return load


def _plans_may_move(db: Phase2Database, table: sql.Identifier, changed: int) -> bool:
    """Whether `changed` rows could move the plans: autovacuum's own rule, 50 rows and 10% of the table (a few
    changed rows at cutover, an ANALYZE of every large table cost seconds of downtime)."""
    planned = db.scalar("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table.as_string(db.conn),))
    return planned is None or planned < 0 or changed > 50 + 0.1 * planned  # -1: never analyzed


def _upsert(db: Phase2Database, entity: Entity, rows: Iterable[dict[str, object]], run_id: str) -> Load:
    """COPY into a staging table, then upsert it by bubble_id in one statement (or, when refused, in parts)."""
    columns = row_columns(entity)
    table = db.table(entity)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    db.execute(
        sql.SQL("CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA").format(
            cols=cols, table=table
        )
    )
    # The row's place in the stage: the upsert works on ranges of it, so a refused row can be isolated.
    db.execute("ALTER TABLE stage ADD COLUMN ord bigint GENERATED ALWAYS AS IDENTITY")
    staged, refused = copy_in_batches(db, columns, rows, _STAGE)
    if entity.has_passwords:
        _keep_carried_passwords(db, entity)
    last = db.scalar("SELECT coalesce(max(ord), 0) FROM stage")
    (inserted, updated), refused_ords = isolate(
        db, range(1, int(last) + 1), lambda ords: _upsert_range(db, entity, ords[0], ords[-1], run_id), _add, (0, 0)
    )
    for ord_, error in refused_ords:
        row = db.execute(sql.SQL("SELECT {} FROM stage WHERE ord = %s").format(cols), (ord_,)).fetchone()
        refused.append((dict(zip(columns, row, strict=True)), error))
    if refused_ords:
        db.execute("DELETE FROM stage WHERE ord = ANY(%s)", ([o for o, _ in refused_ords],))
    _map_ids(db, entity, sql.SQL("stage s JOIN {} t USING (bubble_id)").format(table), run_id)
    _hash_new_versions(db, entity, run_id)
    db.execute("DROP TABLE stage")
    return Load(LoadResult(staged - len(refused_ords), inserted, updated), refused)


def _keep_carried_passwords(db: Phase2Database, entity: Entity) -> None:
    """A staged row without a password keeps the one its user carried over or set in Phase 2 (`keeps_password`)."""
    db.execute(
        sql.SQL(
            "UPDATE stage s SET ({cols}) = ({kept}) FROM {table} t WHERE t.bubble_id = s.bubble_id"
            " AND s.password_hash IS NULL AND t.password_hash IS NOT NULL"
            " AND t.password_hash_source IS DISTINCT FROM %s"
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, KEPT_PASSWORD_COLUMNS)),
            kept=sql.SQL(", ").join(sql.Identifier("t", c) for c in KEPT_PASSWORD_COLUMNS),
            table=db.table(entity),
        ),
        (HASH_FROM_MIGRATION,),
    )


def _upsert_range(db: Phase2Database, entity: Entity, first: int, last: int, run_id: str) -> tuple[int, int]:
    """Save the previous version of every row the stage's rows `first..last` will change, then upsert them."""
    columns = row_columns(entity)
    table = db.table(entity)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    changed = sql.SQL("({t}) IS DISTINCT FROM ({s})").format(
        t=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
        s=sql.SQL(", ").join(sql.Identifier("s", c) for c in columns),
    )
    params = {"run": run_id, "table": entity.table, "first": first, "last": last}
    inserted, updated = db.execute(
        sql.SQL(
            "WITH saved AS ("
            " INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row)"
            " SELECT %(run)s, %(table)s, s.bubble_id,"
            "        CASE WHEN t.id IS NULL THEN 'insert' ELSE 'update' END,"
            "        CASE WHEN t.id IS NULL THEN NULL ELSE to_jsonb(t) END"
            " FROM stage s LEFT JOIN {table} t USING (bubble_id)"
            " WHERE s.ord BETWEEN %(first)s AND %(last)s AND (t.id IS NULL OR {changed})"
            " RETURNING action)"
            " SELECT count(*) FILTER (WHERE action = 'insert'), count(*) FILTER (WHERE action = 'update') FROM saved"
        ).format(changes=db.bookkeeping("row_changes"), table=table, changed=changed),
        params,
    ).fetchone()
    db.execute(
        sql.SQL(
            "INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM stage WHERE ord BETWEEN %(first)s AND %(last)s"
            " ON CONFLICT (bubble_id) DO UPDATE SET {assign}"
            " WHERE ({tcols}) IS DISTINCT FROM ({ecols})"
        ).format(
            table=table,
            cols=cols,
            assign=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns),
            tcols=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
            ecols=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in columns),
        ),
        params,
    )
    return inserted, updated


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _hash_new_versions(db: Phase2Database, entity: Entity, run_id: str) -> None:
    """Note, per row this run inserted or changed, a hash of the version it left: a rollback checks it."""
    db.execute(
        sql.SQL(
            "UPDATE {changes} c SET new_hash = md5(to_jsonb(t)::text) FROM {table} t"
            " WHERE c.run_id = %(run)s AND c.table_name = %(table_name)s AND c.action <> 'delete'"
            " AND c.new_hash IS NULL AND t.bubble_id = c.bubble_id"
        ).format(changes=db.bookkeeping("row_changes"), table=db.table(entity)),
        {"run": run_id, "table_name": entity.table},
    )


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


def _first_load(db: Phase2Database, entity: Entity, rows: Iterable[dict[str, object]], run_id: str) -> Load:
    """Load into an empty table (locked by `_claim_empty_table`): every row is an insert.

    The same rows, row history and id map as the upsert, but the rows are copied straight into the
    table: no staging table, no upsert, no join. Every row of the table is then one of this run.
    """
    table = db.table(entity)
    copied, refused = copy_in_batches(db, row_columns(entity), rows, table)
    db.execute(
        sql.SQL(
            "INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row, new_hash)"
            " SELECT %(run)s, %(table)s, t.bubble_id, 'insert', NULL, md5(to_jsonb(t)::text) FROM {table} t"
        ).format(changes=db.bookkeeping("row_changes"), table=table),
        {"run": run_id, "table": entity.table},
    )
    _map_ids(db, entity, sql.SQL("{} t").format(table), run_id)
    return Load(LoadResult(copied, copied, 0), refused)


def _map_ids(db: Phase2Database, entity: Entity, loaded: sql.Composable, run_id: str) -> None:
    """Record bubble_id -> id for every loaded row the id map does not know yet; `loaded` names the rows as `t`.

    A mapping keeps the run that made it: a re-run writes nothing here. Only a row that came back under
    a new id (the app deleted it, the migration inserted it again) changes its mapping.
    """
    id_map = db.bookkeeping("id_map")
    params = {"entity": entity.name, "run": run_id}
    db.execute(
        sql.SQL(
            "UPDATE {id_map} m SET phase2_id = t.id, run_id = %(run)s FROM {loaded}"
            " WHERE m.entity = %(entity)s AND m.bubble_id = t.bubble_id AND m.phase2_id <> t.id"
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
BATCH_ROWS = 20_000  # rows held at once, and the most a refused row makes the load COPY again


def copy_in_batches(
    db: Phase2Database, columns: list[str], rows: Iterable[dict[str, object]], target: sql.Composable
) -> tuple[int, list[tuple[dict[str, object], Exception]]]:
    """COPY `rows` a batch at a time, each in a savepoint; the rows PostgreSQL refuses are set aside."""
    copied, refused = 0, []
    rows = iter(rows)
    while batch := list(itertools.islice(rows, BATCH_ROWS)):
        done, refused_here = isolate(db, batch, lambda part: _copy_rows(db, columns, part, target), operator.add, 0)
        copied += done
        refused += refused_here
    return copied, refused


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
