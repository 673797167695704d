"""`{migration}.files`: one row per file reference (record, column, original URL) and what became of it.

Plain functions on a psycopg 3 connection and the migration schema's name. A row is keyed by the
reference and its URL, so a record whose file changed in Bubble keeps the row of its old file (still
stored, and what a rollback of that run maps back) beside the new one. `run_id` and `recorded_at`
say which run last changed a row: saving an unchanged result writes nothing. The table's DDL is
`loading/sql/files.sql`, installed with the rest of the bookkeeping (the files step runs on a loaded database).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from culturebridge_migration.files.types import CopyResult, FileRef
from culturebridge_migration.loading.schema import bookkeeping_sql

_COLUMNS = (
    "entity",
    "bubble_id",
    "column_name",
    "original_url",
    "storage_key",
    "public_url",
    "bytes",
    "sha256",
    "content_type",
    "status",
    "reason",
    "run_id",
)
_KEY_COLUMNS = _COLUMNS[:4]
_OUTCOME_COLUMNS = _COLUMNS[4:11]  # what a new result may change; run_id alone is no change


@dataclass(frozen=True)
class FileRow:
    ref: FileRef
    result: CopyResult
    run_id: str
    recorded_at: datetime


def ensure_files_table(conn: psycopg.Connection, migration_schema: str) -> None:
    """Create `{migration}.files` if it is not there; safe to run again, and from parallel steps at once.

    Two sessions running `CREATE TABLE IF NOT EXISTS` together can still collide in the catalog,
    hence the advisory lock.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('culturebridge_migration.files'))")
        conn.execute(bookkeeping_sql(migration_schema, ("files.sql",)).encode())


def copied_files(
    conn: psycopg.Connection, migration_schema: str, *, urls: Collection[str] | None = None
) -> dict[str, CopyResult]:
    """The last `copied` result of every original URL (of `urls`, if given): one file serves every record
    that links it."""
    only = (
        sql.SQL(" JOIN unnest(%(urls)s::text[]) AS u (url) ON u.url = original_url")
        if urls is not None
        else sql.SQL("")
    )
    query = sql.SQL(
        "SELECT DISTINCT ON (original_url) original_url, storage_key, public_url, bytes, sha256, content_type "
        "FROM {}{} WHERE status = 'copied' ORDER BY original_url, recorded_at DESC"
    ).format(sql.Identifier(migration_schema, "files"), only)
    rows = conn.execute(query, {"urls": list(urls) if urls is not None else None}).fetchall()
    return {
        url: CopyResult("copied", key, public, size, digest, ctype) for url, key, public, size, digest, ctype in rows
    }


def save_file_results(
    conn: psycopg.Connection, migration_schema: str, results: Iterable[tuple[FileRef, CopyResult]], run_id: str
) -> int:
    """Upsert one row per (reference, result); returns how many rows were written (unchanged ones are not)."""
    params = [_row_params(ref, result, run_id) for ref, result in results]
    if not params:
        return 0
    with conn.cursor() as cursor:
        cursor.executemany(_upsert(migration_schema), params)
        return cursor.rowcount


def _row_params(ref: FileRef, result: CopyResult, run_id: str) -> tuple:
    outcome = (result.key, result.public_url, result.bytes, result.sha256, result.content_type, result.status)
    return (ref.entity, ref.bubble_id, ref.column, ref.url, *outcome, result.reason, run_id)


def _upsert(migration_schema: str) -> sql.Composed:
    table = sql.Identifier(migration_schema, "files")
    assignments = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column)) for column in (*_OUTCOME_COLUMNS, "run_id")
    )
    changed = sql.SQL("({}) IS DISTINCT FROM ({})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(table, sql.Identifier(c)) for c in _OUTCOME_COLUMNS),
        sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in _OUTCOME_COLUMNS),
    )
    return sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) "
        "DO UPDATE SET {assignments}, recorded_at = clock_timestamp() WHERE {changed}"
    ).format(
        table=table,
        columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(_COLUMNS)),
        key=sql.SQL(", ").join(map(sql.Identifier, _KEY_COLUMNS)),
        assignments=assignments,
        changed=changed,
    )


def file_rows(
    conn: psycopg.Connection, migration_schema: str, *, entity: str | None = None, not_copied: bool = False
) -> list[FileRow]:
    """Every row (of one entity, if given; only the links not copied, if asked), in a stable order."""
    query = sql.SQL(
        "SELECT {columns}, recorded_at FROM {table} WHERE (%(entity)s::text IS NULL OR entity = %(entity)s)"
        " AND (NOT %(not_copied)s OR status <> 'copied') ORDER BY entity, bubble_id, column_name, original_url"
    ).format(columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)), table=sql.Identifier(migration_schema, "files"))
    return [_file_row(row) for row in conn.execute(query, {"entity": entity, "not_copied": not_copied}).fetchall()]


def _file_row(row: tuple) -> FileRow:
    entity, bubble_id, column, url, key, public, size, digest, ctype, status, reason, run_id, recorded_at = row
    result = CopyResult(status, key, public, size, digest, ctype, reason)
    return FileRow(FileRef(entity, bubble_id, column, url), result, run_id, recorded_at)


AFFECTED_LISTED = 20  # Bubble ids listed per entity for files that are not copied


def file_totals(conn: psycopg.Connection, migration_schema: str, run_id: str) -> list[dict[str, object]]:
    """Per entity, the state of its file links (copied, missing at Bubble, failed) and what `run_id` copied.

    For the reports: one row per entity with `files` (distinct files copied) and their `bytes`, each file
    once however many records link it; `copied_this_run` and `bytes_this_run` (the files this run copied
    first); `missing` and `failed` (links); and the Bubble ids of the records whose file is not copied
    (`records_affected`, at most AFFECTED_LISTED)."""
    query = sql.SQL(
        "WITH copies AS (SELECT DISTINCT ON (entity, original_url) entity, bytes, run_id FROM {files}"
        "  WHERE status = 'copied' ORDER BY entity, original_url, recorded_at),"
        " per_file AS (SELECT entity, count(*) AS files, sum(bytes)::bigint AS bytes,"
        "  count(*) FILTER (WHERE run_id = %(run)s) AS this_run,"
        "  coalesce(sum(bytes) FILTER (WHERE run_id = %(run)s), 0)::bigint AS bytes_this_run"
        "  FROM copies GROUP BY entity),"
        " per_link AS (SELECT entity, count(*) FILTER (WHERE status = 'missing') AS missing,"
        "  count(*) FILTER (WHERE status = 'failed') AS failed,"
        "  (array_agg(DISTINCT bubble_id) FILTER (WHERE status <> 'copied'))[1:%(listed)s] AS affected"
        "  FROM {files} GROUP BY entity)"
        " SELECT l.entity, coalesce(f.files, 0), coalesce(f.bytes, 0), l.missing, l.failed,"
        " coalesce(f.this_run, 0), coalesce(f.bytes_this_run, 0), l.affected"
        " FROM per_link l LEFT JOIN per_file f USING (entity) ORDER BY l.entity"
    ).format(files=sql.Identifier(migration_schema, "files"))
    names = ("entity", "files", "bytes", "missing", "failed", "copied_this_run", "bytes_this_run", "records_affected")
    rows = conn.execute(query, {"run": run_id, "listed": AFFECTED_LISTED}).fetchall()
    return [{**dict(zip(names, row, strict=True)), "records_affected": row[-1] or []} for row in rows]
