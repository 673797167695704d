"""The fallback's bookkeeping in Phase 2: what it has written to Bubble, and the rows it reads to write.

Every function runs in its own committed transaction: a mark made before a create must survive a crash
during it, or a rerun could not know to look the thing up before creating it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from psycopg import sql
from psycopg.rows import dict_row

from culturebridge_migration.loading.change_capture import NetChange, net_changes
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity
from culturebridge_migration.mapping.reverse import BubbleIdOf


def pending(db: Phase2Database) -> list[NetChange]:
    """Each changed row's net change since cutover that is not yet in Bubble."""
    with db.transaction():
        return net_changes(db)


def capture_started(db: Phase2Database) -> datetime | None:
    """When change capture began (the cutover), None if it never did."""
    with db.transaction():
        return db.scalar(sql.SQL("SELECT started_at FROM {}").format(db.bookkeeping("capture_started")))  # type: ignore[return-value]


def rows(db: Phase2Database, entity: Entity, ids: Iterable[int]) -> dict[int, dict]:
    """The Phase 2 rows of `ids` as they are now, by id (a deleted row is absent)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    with db.transaction(), db.conn.cursor(row_factory=dict_row) as cursor:
        query = sql.SQL("SELECT * FROM {} WHERE id = ANY(%s)").format(db.table(entity))
        return {row["id"]: row for row in cursor.execute(query, (wanted,))}


def bubble_ids(db: Phase2Database, entity: Entity, ids: Iterable[int]) -> dict[int, str | None]:
    """The Bubble id of each Phase 2 row of `ids` that exists (None: the app made it and Bubble has it not yet)."""
    with db.transaction():
        query = sql.SQL("SELECT id, bubble_id FROM {} WHERE id = ANY(%s)").format(db.table(entity))
        return dict(db.execute(query, (sorted(set(ids)),)).fetchall())


def bubble_id_of(db: Phase2Database) -> BubbleIdOf:
    """What the reverse mapping asks of a reference: the referenced Phase 2 row's Bubble id, as it is now."""
    return lambda entity_name, phase2_id: bubble_ids(db, db.entities[entity_name], [phase2_id]).get(phase2_id)


def written(db: Phase2Database, table: str) -> dict[int, tuple[bool, datetime]]:
    """Per row of `table` the ledger holds: (sending, since when Bubble's copy is the fallback's)."""
    query = sql.SQL(
        "SELECT row_id, sending, greatest(written_at, bubble_modified) FROM {} WHERE table_name = %s"
    ).format(db.bookkeeping("fallback_rows"))
    with db.transaction():
        return {row_id: (sending, since) for row_id, sending, since in db.execute(query, (table,))}


def mark_sending(db: Phase2Database, table: str, row_ids: Iterable[int]) -> None:
    """Before a create is sent: a rerun after a crash looks these rows up in Bubble before creating them."""
    query = sql.SQL(
        "INSERT INTO {} (table_name, row_id, sending) SELECT %s, unnest(%s::bigint[]), true"
        " ON CONFLICT (table_name, row_id) DO UPDATE SET sending = true"
    ).format(db.bookkeeping("fallback_rows"))
    with db.transaction():
        db.execute(query, (table, list(row_ids)))


def clear_sending(db: Phase2Database, table: str, row_ids: Iterable[int]) -> None:
    """Creates Bubble refused: nothing was made, nothing to look up."""
    query = sql.SQL("UPDATE {} SET sending = false WHERE table_name = %s AND row_id = ANY(%s)").format(
        db.bookkeeping("fallback_rows")
    )
    with db.transaction():
        db.execute(query, (table, list(row_ids)))


def record_written(
    db: Phase2Database, entity: Entity, change: NetChange, bubble_id: str | None, *, created: bool = False
) -> None:
    """The row's captured changes up to `change.last_seq` are in Bubble; a created row gets its Bubble id in
    Phase 2 too (this session is the migration's, so the capture does not record it as the app's change)."""
    ledger = db.bookkeeping("fallback_rows")
    with db.transaction():
        db.execute(
            sql.SQL(
                "INSERT INTO {} (table_name, row_id, applied_seq, bubble_id) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (table_name, row_id) DO UPDATE SET applied_seq = excluded.applied_seq,"
                " sending = false, bubble_id = excluded.bubble_id, written_at = clock_timestamp()"
            ).format(ledger),
            (change.table_name, change.row_id, change.last_seq, bubble_id),
        )
        if created:
            db.execute(
                sql.SQL("UPDATE {} SET bubble_id = %s WHERE id = %s AND bubble_id IS NULL").format(db.table(entity)),
                (bubble_id, change.row_id),
            )


def record_read_back(db: Phase2Database, table: str, modified: dict[int, datetime]) -> None:
    """Bubble's Modified Date of what the fallback wrote, read back: a later change after it is someone else's."""
    if not modified:
        return
    query = sql.SQL(
        "UPDATE {} f SET bubble_modified = m.modified FROM unnest(%s::bigint[], %s::timestamptz[]) AS m(row_id, modified)"
        " WHERE f.table_name = %s AND f.row_id = m.row_id"
    ).format(db.bookkeeping("fallback_rows"))
    with db.transaction():
        db.execute(query, (list(modified), list(modified.values()), table))


def touched(db: Phase2Database) -> list[tuple[str, int, str | None]]:
    """Every row the app changed since cutover: (table, row id, its last Bubble id)."""
    query = sql.SQL(
        "SELECT DISTINCT ON (c.table_name, c.row_id) c.table_name, c.row_id, coalesce(f.bubble_id, c.bubble_id)"
        " FROM {} c LEFT JOIN {} f USING (table_name, row_id) ORDER BY c.table_name, c.row_id, c.seq DESC"
    ).format(db.bookkeeping("captured_changes"), db.bookkeeping("fallback_rows"))
    with db.transaction():
        return [tuple(row) for row in db.execute(query)]  # type: ignore[misc]
