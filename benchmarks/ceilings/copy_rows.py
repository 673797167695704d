"""Already-mapped bookings rows COPYed two ways, against the migration's load rows/s.

Bare: as many rows as the load loaded (cycled) into an UNLOGGED copy of the table with no index,
constraint or foreign key: what COPY does at all. Into the schema: each row once into a table with
the bookings' indexes, checks and foreign keys: what this schema costs, before our bookkeeping.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.report import CopyCeiling, CopyIntoSchema, MigrationFigures
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.mapper import map_records, row_columns
from culturebridge_migration.sources.export_store import read_export

REPEATS = 3  # each COPY is a few seconds: the median of three
BARE_TABLE = "CREATE UNLOGGED TABLE bench_copy (LIKE public.bookings INCLUDING DEFAULTS INCLUDING IDENTITY)"
FOREIGN_KEYS = (
    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.bookings'::regclass AND contype = 'f'"
)
COLUMN_TYPES = (
    "SELECT atttypid FROM pg_attribute WHERE attrelid = 'bench_copy'::regclass AND attnum > 0"
    " AND NOT attisdropped AND attname = ANY(%s) ORDER BY array_position(%s, attname::text)"
)


def copy_ceiling(database_url: str, export_dir: Path, migration: MigrationFigures) -> CopyCeiling:
    rows_wanted = migration.loaded_rows
    nothing = CopyCeiling(
        0, 0.0, REPEATS, None, migration.load_rows_per_second, migration.database_rows_per_second, None, None, None
    )
    try:
        records, _ = read_export(export_dir, "bookings")
    except FileNotFoundError:  # the run failed before exporting bookings
        return nothing
    with psycopg.connect(database_url) as conn:
        mapped = map_records(
            ENTITIES["bookings"], records, Phase2Database(conn).reference_lookups(ENTITIES["bookings"])
        ).rows
        if not mapped or rows_wanted <= 0:
            return nothing
        bare = _timed_copy(conn, BARE_TABLE, lambda: (mapped[i % len(mapped)] for i in range(rows_wanted)))
        foreign_keys = [definition for (definition,) in conn.execute(FOREIGN_KEYS)]
        with_schema = "CREATE TABLE bench_copy (LIKE public.bookings INCLUDING ALL"
        with_schema += "".join(f", {fk}" for fk in foreign_keys) + ")"
        schema = _timed_copy(conn, with_schema, lambda: iter(mapped))
    rate, schema_rate = rows_wanted / bare, len(mapped) / schema
    return CopyCeiling(
        rows=rows_wanted,
        seconds=bare,
        repeats=REPEATS,
        rows_per_second=rate,
        load_rows_per_second=migration.load_rows_per_second,
        database_rows_per_second=migration.database_rows_per_second,
        ratio=migration.load_rows_per_second / rate,
        database_ratio=migration.database_rows_per_second / rate,
        into_schema=CopyIntoSchema(
            rows=len(mapped),
            seconds=schema,
            rows_per_second=schema_rate,
            foreign_keys=len(foreign_keys),
            database_ratio=migration.database_rows_per_second / schema_rate,
        ),
    )


def _timed_copy(conn: psycopg.Connection, create: str, rows: Callable[[], Iterator[dict[str, object]]]) -> float:
    """Median seconds to COPY (binary, one transaction) `rows()` into a fresh table `create` makes as bench_copy."""
    columns = row_columns(ENTITIES["bookings"])
    copy_sql = sql.SQL("COPY bench_copy ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    timings = []
    for _ in range(REPEATS):
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(create)
        type_oids = [oid for (oid,) in conn.execute(COLUMN_TYPES, (columns, columns))]
        conn.commit()
        clock = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
            copy.set_types(type_oids)
            for row in rows():
                copy.write_row([row[c] for c in columns])
        timings.append(time.perf_counter() - clock)
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return statistics.median(timings)
