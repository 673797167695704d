"""Records migrated earlier that are gone from Bubble: found by a full export, then reported, flagged or deleted.

Bubble keeps no tombstones, so the only evidence of a deletion is a record's absence from a *full*
export (an incremental export lists only changes). What happens to such a row is configuration:
- `report` (default): nothing is written; the `deleted_in_bubble` check lists them;
- `flag`: they stay, and are listed in `migration.deleted_in_bubble` for the app and people to act on;
- `delete`: they are deleted, with their last version saved in `row_changes` so a rollback puts them
  back. A row that another row still references (a user with bookings, or any row of the app's own
  tables) is kept and flagged with the referencing column instead: deleting it would break that row.
  Once its children are gone too (a later full run sweeps them first), the next full run deletes it.
Only rows the migration loaded (in the id map) are ever considered; rows the app created are not.
Before a row is flagged or deleted, Bubble is asked for it by id (`GET /obj/TYPE/ID`, 404 = gone): a
record a full export missed but Bubble still has is left as it is and named (the export was not whole
after all); where the source cannot be asked (CSV files), nothing is deleted: the rows are flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from psycopg import sql

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity
from culturebridge_migration.mapping.values import bubble_id as valid_id
from culturebridge_migration.sources.deletion_census import CensusOutcome
from culturebridge_migration.sources.export_store import ExportManifest


class DeletedRecords(StrEnum):
    REPORT = "report"
    FLAG = "flag"
    DELETE = "delete"


UNCONFIRMED = (
    "missing from the export files, kept: CSV files cannot be asked for one record, so Bubble did not confirm it"
)

# Of some Bubble ids, those Bubble still answers by id; None when the source cannot be asked (CSV files).
StillInBubble = Callable[[Entity, list[str]], set[str] | None]


@dataclass(frozen=True)
class Gone:
    """Migrated rows absent from an export that proves it, after Bubble was asked for each by id."""

    ids: list[str]  # absent, and gone by id (or, when unconfirmed, absent only)
    alive: list[str] = field(default_factory=list)  # absent from the export, yet Bubble answers them by id
    confirmed: bool = True  # False: the source could not be asked by id

    @classmethod
    def asking(cls, entity: Entity, absent: list[str], still_in_bubble: StillInBubble | None) -> Gone:
        """`absent` split by Bubble's answer to each id; unconfirmed when there is no one to ask."""
        if not absent:
            return cls([])
        answer = still_in_bubble(entity, absent) if still_in_bubble else None
        if answer is None:
            return cls(absent, confirmed=False)
        return cls([i for i in absent if i not in answer], sorted(answer))


@dataclass(frozen=True)
class Sweep:
    mode: DeletedRecords
    deleted: list[str] = field(default_factory=list)
    flagged: dict[str, str] = field(default_factory=dict)  # bubble_id -> why it stays
    alive: list[str] = field(default_factory=list)  # missing from the export but in Bubble by id: left as they are
    confirmed: bool = True  # Bubble was asked for each row by id before it was flagged or deleted


def proves_whole_type(export: ExportManifest | None, records_read: int) -> bool:
    """Only an export of every record of the type shows that a record is gone from Bubble."""
    return (
        export is not None
        and export.modified_after is None
        and export.complete
        and records_read == export.exported == export.unique_ids
    )


def conclusive_census(export: ExportManifest | None, records_read: int) -> CensusOutcome | None:
    """The census that came with this export, when it proves what Bubble deleted (sources/deletion_census.py)."""
    if export is None or not export.census or not export.complete or records_read != export.exported:
        return None
    census = CensusOutcome(**export.census)
    return census if census.conclusive else None


def stage_exported_ids(
    db: Phase2Database, exported_ids: Iterable[str | None], *, for_the_session: bool = False
) -> None:
    """The export's Bubble ids as the temp table `exported_ids`: for the transaction, or (checks) the session."""
    db.execute("DROP TABLE IF EXISTS exported_ids")
    # No index: its queries are hash joins, which ANALYZE lets the planner choose.
    lasting = "PRESERVE ROWS" if for_the_session else "DROP"
    db.execute(f"CREATE TEMP TABLE exported_ids (bubble_id text NOT NULL) ON COMMIT {lasting}")
    with db.conn.cursor().copy("COPY exported_ids FROM STDIN") as copy:
        for bubble_id in {i for i in exported_ids if valid_id(i) is not None}:  # no NUL reaches COPY
            copy.write_row((bubble_id,))
    db.execute("ANALYZE exported_ids")


def find_gone(db: Phase2Database, entity: Entity) -> list[str]:
    """Bubble ids of migrated rows still in Phase 2 but missing from `exported_ids`, sorted."""
    return _migrated_where(
        db, entity, sql.SQL("NOT EXISTS (SELECT 1 FROM exported_ids e WHERE e.bubble_id = t.bubble_id)"), ()
    )


def gone_from_full_export(db: Phase2Database, entity: Entity, exported_ids: Iterable[str | None]) -> list[str]:
    """The migrated rows a full export of the type no longer holds."""
    stage_exported_ids(db, exported_ids)
    return find_gone(db, entity)


def migrated_among(db: Phase2Database, entity: Entity, bubble_ids: Iterable[str]) -> list[str]:
    """Of `bubble_ids` (a census's gone records, rejected ones among them), the migrated rows in Phase 2, sorted."""
    return _migrated_where(db, entity, sql.SQL("t.bubble_id = ANY(%s)"), (list(bubble_ids),))


def _migrated_where(db: Phase2Database, entity: Entity, condition: sql.Composable, params: tuple) -> list[str]:
    """Bubble ids of the rows of `entity` the migration loaded (in its id map) that meet `condition`, sorted."""
    query = sql.SQL(
        "SELECT t.bubble_id FROM {table} t JOIN {id_map} m ON m.entity = %s AND m.bubble_id = t.bubble_id"
        " WHERE {condition} ORDER BY 1"
    ).format(table=db.table(entity), id_map=db.bookkeeping("id_map"), condition=condition)
    return [bubble_id for (bubble_id,) in db.execute(query, (entity.name, *params))]


def sweep(db: Phase2Database, entity: Entity, gone: Gone, mode: DeletedRecords, run_id: str) -> Sweep:
    """Apply `mode` to `gone`, the migrated rows Bubble no longer has; must run inside the load's transaction."""
    if mode is DeletedRecords.REPORT:
        return Sweep(mode)
    deleted: list[str] = []
    if not gone.confirmed:
        flagged = dict.fromkeys(gone.ids, UNCONFIRMED)
    elif mode is DeletedRecords.FLAG:
        flagged = dict.fromkeys(gone.ids, "deleted in Bubble")
    else:
        flagged = _referenced(db, entity, gone.ids)
        deleted = [bubble_id for bubble_id in gone.ids if bubble_id not in flagged]
        _delete(db, entity, deleted, run_id)
    _replace_flags(db, entity, flagged, run_id)
    return Sweep(mode, deleted, flagged, gone.alive, gone.confirmed)


def _referenced(db: Phase2Database, entity: Entity, gone: list[str]) -> dict[str, str]:
    """Of `gone`, the rows some row references through a foreign key, any table's, with the first such column."""
    if not gone:
        return {}
    foreign_keys = db.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
        " WHERE c.contype = 'f' AND c.confrelid = %s::regclass ORDER BY 1, 2",
        (db.table(entity).as_string(),),
    ).fetchall()
    referenced: dict[str, str] = {}
    for child, column in foreign_keys:
        rows = db.execute(
            sql.SQL(
                "SELECT t.bubble_id FROM {table} t WHERE t.bubble_id = ANY(%s)"
                " AND EXISTS (SELECT 1 FROM {child} c WHERE c.{column} = t.id)"
            ).format(table=db.table(entity), child=sql.SQL(child), column=sql.Identifier(column)),
            (gone,),
        )
        for (bubble_id,) in rows:
            referenced.setdefault(bubble_id, f"deleted in Bubble, kept: still referenced by {child}.{column}")
    return referenced


def _delete(db: Phase2Database, entity: Entity, bubble_ids: list[str], run_id: str) -> None:
    """Delete the rows, saving each one's last version for the rollback (the id map keeps their history)."""
    db.execute(
        sql.SQL(
            "WITH removed AS (DELETE FROM {table} t WHERE t.bubble_id = ANY(%(ids)s) RETURNING t.*)"
            " INSERT INTO {changes} (run_id, table_name, bubble_id, action, old_row)"
            " SELECT %(run)s, %(table_name)s, r.bubble_id, 'delete', to_jsonb(r) FROM removed r"
        ).format(table=db.table(entity), changes=db.bookkeeping("row_changes")),
        {"ids": bubble_ids, "run": run_id, "table_name": entity.table},
    )


def _replace_flags(db: Phase2Database, entity: Entity, flagged: dict[str, str], run_id: str) -> None:
    """The entity's flags become exactly `flagged`; a flag keeps the run that first raised it.

    Each flag this changes, removes or adds is saved first, so a rollback of the run puts them back as they were.
    """
    flags = db.bookkeeping("deleted_in_bubble")
    # Every flag that differs, old against new: changed or removed ones keep their old row, a new one none
    # (absent before), so the run counts as a change and its rollback lifts it.
    db.execute(
        sql.SQL(
            "INSERT INTO {changes} (run_id, table_name, key, old_row)"
            " SELECT %(run)s, 'deleted_in_bubble', %(entity)s || '/' || bubble_id, to_jsonb(f)"
            " FROM (SELECT * FROM {flags} WHERE entity = %(entity)s) f"
            " FULL JOIN unnest(%(ids)s::text[], %(reasons)s::text[]) AS n (bubble_id, reason) USING (bubble_id)"
            " WHERE n.reason IS DISTINCT FROM f.reason"
            " ON CONFLICT (run_id, table_name, key) DO NOTHING"
        ).format(changes=db.bookkeeping("bookkeeping_changes"), flags=flags),
        {"entity": entity.name, "run": run_id, "ids": list(flagged), "reasons": list(flagged.values())},
    )
    db.execute(
        sql.SQL("DELETE FROM {} WHERE entity = %s AND NOT (bubble_id = ANY(%s))").format(flags),
        (entity.name, list(flagged)),
    )
    db.execute(
        sql.SQL(
            "INSERT INTO {flags} (entity, bubble_id, phase2_id, reason, run_id)"
            " SELECT %(entity)s, t.bubble_id, t.id, f.reason, %(run)s"
            " FROM unnest(%(ids)s::text[], %(reasons)s::text[]) AS f (bubble_id, reason)"
            " JOIN {table} t USING (bubble_id)"
            " ON CONFLICT (entity, bubble_id) DO UPDATE SET reason = EXCLUDED.reason"
        ).format(flags=flags, table=db.table(entity)),
        {"entity": entity.name, "run": run_id, "ids": list(flagged), "reasons": list(flagged.values())},
    )
