"""One Phase 2 table's Bubble files: found in its rows, copied, and its columns pointed at the copies.

Phase 2's URL columns hold Bubble's URLs after a load. This finds those that point at Bubble's
storage, copies what is not held yet (`sync_files`), then sets each column to its copy's public URL,
saving the row's previous version in `row_changes` like any load: a rollback of the run puts every
original URL back. The original stays in `{migration}.files`. The next load of the table maps the
same Bubble URL straight to the copy (`mapping.file_links.relinked`), so a re-run writes nothing and never points a row
back at Bubble.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from psycopg import sql

from culturebridge_migration.files.bookkeeping import copied_files, file_rows
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.sync import FilesSummary, plan_copies, sync_files
from culturebridge_migration.files.types import FileRef
from culturebridge_migration.files.urls import BubbleFileMatcher, find_file_refs
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity
from culturebridge_migration.mapping.file_links import url_columns


@dataclass
class TableFiles:
    """What one table's file step found and did."""

    entity: str
    references: int  # file URLs in the table's rows (one file linked by two rows counts twice)
    summary: FilesSummary = field(default_factory=FilesSummary)
    to_copy: int = 0  # distinct files not held yet (what a dry run would download)
    relinked: int = 0  # rows pointed at their copies by this run
    missing: list[FileRef] = field(default_factory=list)  # Bubble answered 404 or 410
    failed: list[tuple[FileRef, str]] = field(default_factory=list)  # with the reason


def copy_table_files(
    db: Phase2Database,
    entity: Entity,
    copier: FileCopier,
    matcher: BubbleFileMatcher,
    *,
    run_id: str,
    job_name: str,
    dry_run: bool = False,
) -> TableFiles:
    """Copy the table's Bubble files not held yet and point its rows at the copies (see the module docstring)."""
    columns = url_columns(entity)
    with db.transaction():
        rows = _url_rows(db, entity, columns)
    refs = list(find_file_refs(entity.name, rows, columns, matcher))
    outcome = TableFiles(entity.name, len(refs))
    schema = db.schemas.migration
    if dry_run:  # a rehearsal downloads nothing and changes nothing: it says how much there is to copy
        with db.transaction():
            held = copied_files(db.conn, schema, urls={r.url for r in refs})
        outcome.to_copy = len(plan_copies([r.url for r in refs], held, copier.storage).to_copy)
        return outcome
    outcome.summary = sync_files(db.conn, schema, refs, copier, run_id=run_id)
    with db.transaction():
        db.register_run(run_id, job_name)
        outcome.relinked = _point_at_copies(db, entity, refs, outcome.summary.public_urls, run_id)
    current = {(r.bubble_id, r.column, r.url) for r in refs}
    with db.transaction():
        for row in file_rows(db.conn, schema, entity=entity.name, not_copied=True):
            if (row.ref.bubble_id, row.ref.column, row.ref.url) not in current:
                continue
            if row.result.status == "missing":
                outcome.missing.append(row.ref)
            elif row.result.status == "failed":
                outcome.failed.append((row.ref, row.result.reason or ""))
    return outcome


def _url_rows(db: Phase2Database, entity: Entity, columns: list[str]) -> list[dict[str, object]]:
    names = ["bubble_id", *columns]
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, names)), db.table(entity))
    return [dict(zip(names, row, strict=True)) for row in db.execute(query)]


def _point_at_copies(
    db: Phase2Database, entity: Entity, refs: list[FileRef], copies: Mapping[str, str], run_id: str
) -> int:
    """Set each reference's column to its copy, keeping the row's previous version for the rollback."""
    changed = 0
    for column in url_columns(entity):
        targets = [(r.bubble_id, r.url, copies[r.url]) for r in refs if r.column == column and r.url in copies]
        if not targets:
            continue
        ids, old, new = (list(values) for values in zip(*targets, strict=True))
        changed += db.execute(
            sql.SQL(
                "WITH targets AS (SELECT * FROM unnest(%(ids)s::text[], %(old)s::text[], %(new)s::text[])"
                " AS x (bubble_id, old_url, new_url)),"
                " previous AS (SELECT t.* FROM {table} t JOIN targets x USING (bubble_id) WHERE t.{col} = x.old_url),"
                " relinked AS (UPDATE {table} t SET {col} = x.new_url FROM targets x"
                " WHERE t.bubble_id = x.bubble_id AND t.{col} = x.old_url RETURNING t.*)"
                " INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row, new_hash)"
                " SELECT %(run)s, %(table_name)s, r.bubble_id, 'update', to_jsonb(p), md5(to_jsonb(r)::text)"
                " FROM relinked r JOIN previous p USING (bubble_id)"
            ).format(table=db.table(entity), col=sql.Identifier(column), changes=db.bookkeeping("row_changes")),
            {"ids": ids, "old": old, "new": new, "run": run_id, "table_name": entity.table},
        ).rowcount
    return changed
