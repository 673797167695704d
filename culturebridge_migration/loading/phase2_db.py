"""Phase 2 as one small object: a connection, the two schema names, and the queries several modules share.

Loading, validation, deletions, rollback and reporting all read and write through it, so the
schema names travel together and a shared query is written once. Queries only one module needs
stay in that module, taking a `Phase2Database`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from culturebridge_migration.mapping.entities import ENTITIES, Entity
from culturebridge_migration.mapping.mapper import RefLookup
from culturebridge_migration.mapping.values import format_bubble_datetime

# Unquoted PostgreSQL identifiers (lower case, at most 63 bytes): anything else in a schema name is a
# typo, and `%` or braces in it would break the SQL built around it.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Schemas:
    app: str = "public"
    migration: str = "migration"

    def __post_init__(self) -> None:
        for role, name in (("application", self.app), ("migration bookkeeping", self.migration)):
            if not _IDENTIFIER.fullmatch(name):
                raise ValueError(
                    f"{role} schema name {name!r} is not a plain PostgreSQL identifier: use lower-case letters, "
                    "digits and underscores, starting with a letter or underscore, at most 63 characters"
                )
        if self.app == self.migration:
            raise ValueError(f"the bookkeeping schema must not be the application schema ({self.app!r})")


class Phase2Database:
    """One connection to Phase 2 and where its tables and bookkeeping live."""

    def __init__(
        self, conn: psycopg.Connection, schemas: Schemas | None = None, entities: Mapping[str, Entity] = ENTITIES
    ) -> None:
        self.conn = conn
        self.schemas = schemas or Schemas()
        self.entities = entities

    # -- names ------------------------------------------------------------------------------------
    def table(self, entity: Entity) -> sql.Identifier:
        return sql.Identifier(self.schemas.app, entity.table)

    def bookkeeping(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schemas.migration, name)

    # -- plumbing ---------------------------------------------------------------------------------
    def execute(self, query: sql.Composable | str, params: object = None) -> psycopg.Cursor:
        return self.conn.execute(query, params)  # type: ignore[arg-type]

    def scalar(self, query: sql.Composable | str, params: object = None) -> object:
        row = self.execute(query, params).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    # -- shared queries ---------------------------------------------------------------------------
    def register_run(self, run_id: str, job_name: str) -> None:
        self.execute(
            sql.SQL("INSERT INTO {} (run_id, job_name) VALUES (%s, %s) ON CONFLICT (run_id) DO NOTHING").format(
                self.bookkeeping("runs")
            ),
            (run_id, job_name),
        )

    def latest_entity_run(self, entity: Entity) -> str | None:
        """The run that last loaded `entity` and was not rolled back."""
        return self.scalar(  # type: ignore[return-value]
            sql.SQL(
                "SELECT e.run_id FROM {entity_runs} e JOIN {runs} r USING (run_id)"
                " WHERE e.entity = %s AND r.rolled_back_at IS NULL ORDER BY e.finished_at DESC LIMIT 1"
            ).format(entity_runs=self.bookkeeping("entity_runs"), runs=self.bookkeeping("runs")),
            (entity.name,),
        )

    def reference_lookups(
        self, entity: Entity, only: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, RefLookup]:
        """For each entity `entity` references: Phase 2 ids by bubble_id, and the latest rejects.

        `only` limits each referenced entity to the Bubble ids given (a sample needs a few, not all).
        """
        lookups = {}
        for name in entity.upstream:
            wanted, params = sql.SQL(""), ()
            if only is not None:
                # An id PostgreSQL's text cannot hold (a NUL) is in no table: absent, not an error.
                ids_wanted = [bubble_id for bubble_id in only.get(name, ()) if "\x00" not in bubble_id]
                wanted, params = sql.SQL(" AND bubble_id = ANY(%s)"), (ids_wanted,)
            ids = dict(
                self.execute(
                    sql.SQL("SELECT bubble_id, id FROM {} WHERE bubble_id IS NOT NULL{}").format(
                        self.table(self.entities[name]), wanted
                    ),
                    params,
                )
            )
            # The latest reject of each record not loaded, from any run that was not rolled back.
            rejected = dict(
                self.execute(
                    sql.SQL(
                        "SELECT DISTINCT ON (x.bubble_id) x.bubble_id, x.reason FROM {rejects} x"
                        " JOIN {runs} r USING (run_id) WHERE x.entity = %s AND r.rolled_back_at IS NULL{wanted}"
                        " ORDER BY x.bubble_id, r.started_at DESC"
                    ).format(rejects=self.bookkeeping("rejects"), runs=self.bookkeeping("runs"), wanted=wanted),
                    (name, *params),
                )
            )
            lookups[name] = RefLookup(ids, rejected)
        return lookups

    def read_watermark(self, entity: Entity) -> datetime | None:
        return self.scalar(  # type: ignore[return-value]
            sql.SQL("SELECT modified_until FROM {} WHERE entity = %s").format(self.bookkeeping("watermarks")),
            (entity.name,),
        )

    def advance_watermark(self, entity: Entity, modified_until: datetime, run_id: str) -> None:
        """Called in the load's transaction: the watermark moves only if the load commits.

        Its version before the run is kept, so a rollback puts it back and the next sync asks Bubble again
        for everything the rolled-back run had brought over.
        """
        self.execute(
            sql.SQL(
                "INSERT INTO {changes} (run_id, table_name, key, old_row)"
                " SELECT %(run)s, 'watermarks', %(entity)s, (SELECT to_jsonb(w) FROM {watermarks} w WHERE entity = %(entity)s)"
                " ON CONFLICT (run_id, table_name, key) DO NOTHING"
            ).format(changes=self.bookkeeping("bookkeeping_changes"), watermarks=self.bookkeeping("watermarks")),
            {"run": run_id, "entity": entity.name},
        )
        self.execute(
            sql.SQL(
                "INSERT INTO {} AS w (entity, modified_until, run_id) VALUES (%s, %s, %s)"
                " ON CONFLICT (entity) DO UPDATE"
                " SET modified_until = greatest(w.modified_until, EXCLUDED.modified_until),"
                " run_id = EXCLUDED.run_id, updated_at = now()"
            ).format(self.bookkeeping("watermarks")),
            (entity.name, modified_until, run_id),
        )

    def known_password_hashes(self, entity: Entity) -> dict[tuple[str, str], str]:
        """(bubble_id, Modified Date as Bubble writes it) -> the password hash Phase 2 holds for that version."""
        if not any(f.column == "password_hash" for f in entity.fields):
            return {}
        rows = self.execute(
            sql.SQL(
                "SELECT bubble_id, updated_at, password_hash FROM {} WHERE password_hash IS NOT NULL"
                " AND bubble_id IS NOT NULL"
            ).format(self.table(entity))
        )
        return {(bubble_id, format_bubble_datetime(updated)): hashed for bubble_id, updated, hashed in rows}

    def known_records(self, entity: Entity) -> list[tuple[datetime, str]]:
        """(Created Date, Bubble id) of every record of `entity` the migration knows Bubble had: the rows it
        loaded, and the records it rejected and never loaded (the deletion census counts both)."""
        return self.execute(
            sql.SQL(
                "SELECT t.created_at, t.bubble_id FROM {table} t"
                " JOIN {id_map} m ON m.entity = %(entity)s AND m.bubble_id = t.bubble_id"
                " UNION ALL"
                " SELECT DISTINCT ON (x.bubble_id) x.created_at::timestamptz, x.bubble_id FROM {rejects} x"
                " JOIN {runs} r USING (run_id) WHERE x.entity = %(entity)s AND r.rolled_back_at IS NULL"
                " AND x.created_at IS NOT NULL AND x.bubble_id <> ''"
                " AND NOT EXISTS (SELECT FROM {table} t WHERE t.bubble_id = x.bubble_id)"
            ).format(
                table=self.table(entity),
                id_map=self.bookkeeping("id_map"),
                rejects=self.bookkeeping("rejects"),
                runs=self.bookkeeping("runs"),
            ),
            {"entity": entity.name},
        ).fetchall()

    def file_copies(self, entity: Entity) -> dict[str, str]:
        """Bubble file URL -> its copy's public URL, for every file of `entity` copied so far (files/)."""
        return dict(
            self.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (original_url) original_url, public_url FROM {} WHERE entity = %s"
                    " AND status = 'copied' ORDER BY original_url, recorded_at DESC"
                ).format(self.bookkeeping("files")),
                (entity.name,),
            )
        )

    def id_mapping(self, entity: Entity) -> dict[str, int]:
        """Bubble id -> Phase 2 id for every migrated row of an entity now in Phase 2 (not the app's own rows)."""
        return dict(
            self.execute(
                sql.SQL("SELECT bubble_id, id FROM {} WHERE bubble_id IS NOT NULL ORDER BY id").format(
                    self.table(entity)
                )
            )
        )
