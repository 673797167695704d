"""Phase 2's live tables against the tables the rules require: the differences, the SQL that mends each, applied.

The required tables are not described a second time: the field table's DDL (`schema.py`) is run
into temporary tables inside a transaction that is undone, and both schemas are read from
PostgreSQL's catalog (`catalog.py`), so each side is in PostgreSQL's own normalised words. What
differs (a missing table or column, a type, NOT NULL, a default, a CHECK, a foreign key, an index)
becomes a `Difference` with the SQL that makes the live table follow the rules.

Who applies it depends on who owns the schema (`MIGRATION_SCHEMA_OWNER`): the migration applies the
differences itself, each in a savepoint, and records them in `{migration}.schema_migrations`; an app
that runs its own migrations gets the differences and the SQL, and the run stops before loading.
Columns, constraints and indexes the rules do not name are the app's own and are left alone, except
a CHECK or foreign key named as this project names its own (`users_role_check`) on a column the rules
map: that one a rule change made obsolete.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from culturebridge_migration.loading.catalog import LiveConstraint, LiveTable, read_catalog, temp_schema_name
from culturebridge_migration.loading.phase2_db import Schemas
from culturebridge_migration.loading.schema import bookkeeping_sql, phase2_sql, table_sql
from culturebridge_migration.mapping.entities import ENTITIES, Entity, load_order

logger = logging.getLogger(__name__)


class SchemaOwner(StrEnum):
    MIGRATION = "migration"  # this project creates and evolves the Phase 2 tables
    APP = "app"  # the Phase 2 app's own migrations do; the run only compares


@dataclass(frozen=True)
class Difference:
    table: str
    what: str  # for a person: "column hourly_rate is numeric(8,2); the rules say numeric(10,2)"
    steps: tuple[str, ...]  # SQL that makes the live table follow the rules, applied one step at a time

    @property
    def fix(self) -> str:
        return "\n".join(self.steps)


class SchemaDiffers(RuntimeError):
    """The app owns Phase 2's schema and it differs from the rules: the message holds the SQL that mends it."""

    def __init__(self, differences: list[Difference]) -> None:
        self.differences = differences
        super().__init__(
            f"Phase 2's tables differ from the migration's rules in {len(differences)} place(s) and the app owns "
            "its schema (MIGRATION_SCHEMA_OWNER=app): nothing was loaded. Apply this SQL with the app's own "
            "migrations (or set MIGRATION_SCHEMA_OWNER=migration to let the migration apply it), then run again:\n"
            + fix_script(differences)
        )


@dataclass(frozen=True)
class Evolution:
    applied: list[Difference]
    failed: list[tuple[Difference, str]]  # with PostgreSQL's reason
    remaining: list[Difference]


def ensure_schema(
    conn: psycopg.Connection,
    schemas: Schemas,
    entities: Mapping[str, Entity] = ENTITIES,
    owner: SchemaOwner = SchemaOwner.MIGRATION,
) -> Evolution | None:
    """Bring the bookkeeping schema and the Phase 2 tables up to this version's rules; None: already there.

    Nothing is compared when the installed rules are this version's (`schema_version`): even reading
    the catalog under DDL would queue behind a load running in a parallel step. When they differ, an
    advisory lock keeps parallel steps from racing. SchemaDiffers when the app owns the tables and they
    differ; nothing of this call is kept then.
    """
    version = hashlib.sha256(f"{phase2_sql(schemas.app, entities)}\n{bookkeeping_sql(schemas.migration)}".encode())
    marker = sql.Identifier(schemas.migration, "schema_version")
    if _installed_version(conn, marker) == version.hexdigest():
        return None
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('culturebridge_migration.schema'))")
        conn.execute(bookkeeping_sql(schemas.migration).encode())
        if owner is SchemaOwner.APP:
            differences = schema_differences(conn, schemas, entities)
            if differences:
                raise SchemaDiffers(differences)
            evolution = Evolution([], [], [])
        else:
            evolution = evolve(conn, schemas, version.hexdigest(), entities)
        _log(evolution)
        if not evolution.remaining:  # else compared again next time, and the check says what is left
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (version text NOT NULL)").format(marker))
            conn.execute(sql.SQL("DELETE FROM {}").format(marker))
            conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(marker), (version.hexdigest(),))
    return evolution


def _installed_version(conn: psycopg.Connection, marker: sql.Identifier) -> str | None:
    with conn.transaction():
        if conn.execute("SELECT to_regclass(%s)", (marker.as_string(),)).fetchone()[0] is None:
            return None
        row = conn.execute(sql.SQL("SELECT version FROM {}").format(marker)).fetchone()
    return row[0] if row else None


def _log(evolution: Evolution) -> None:
    for difference in evolution.applied:
        logger.info("Phase 2 schema: %s: %s (mended)", difference.table, difference.what)
    for difference, error in evolution.failed:
        logger.warning(
            "Phase 2 schema: %s: %s: PostgreSQL refused the fix: %s", difference.table, difference.what, error
        )


def fix_script(differences: list[Difference]) -> str:
    """The differences as one SQL script, each fix under a comment saying what it mends."""
    return "\n".join(f"-- {d.table}: {d.what}\n{d.fix}" for d in differences)


def schema_differences(
    conn: psycopg.Connection, schemas: Schemas, entities: Mapping[str, Entity] = ENTITIES
) -> list[Difference]:
    """Every way the live Phase 2 tables differ from what the rules require, parents' tables first."""
    tables = [entities[name].table for name in load_order(entities)]
    required = _required_catalog(conn, entities, tables)
    live = read_catalog(conn, schemas.app, tables)
    found: list[Difference] = []
    for name in load_order(entities):
        entity = entities[name]
        have = live.get(entity.table)
        if have is None:
            found.append(Difference(entity.table, "the table is missing", (table_sql(entity, entities, schemas.app),)))
            continue
        target = sql.Identifier(schemas.app, entity.table).as_string()
        want = required[entity.table]
        found += _column_differences(entity.table, target, want, have)
        found += _constraint_differences(entity.table, target, schemas.app, want, have)
        found += _index_differences(entity.table, target, schemas.app, want, have)
    return found


def evolve(
    conn: psycopg.Connection, schemas: Schemas, rules_version: str, entities: Mapping[str, Entity] = ENTITIES
) -> Evolution:
    """Apply every difference, each in a savepoint, and record what was applied as one numbered migration.

    A step PostgreSQL refuses (a NOT NULL over rows holding NULL, a CHECK that existing rows break) leaves
    a difference with PostgreSQL's reason, the steps before it kept (a CHECK added NOT VALID holds new
    rows at once): the `schema_matches_rules` check fails on what is left until it is mended.
    """
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schemas.app)))
    applied: list[Difference] = []
    failed: list[tuple[Difference, str]] = []
    for difference in schema_differences(conn, schemas, entities):
        try:
            for step in difference.steps:
                with conn.transaction():
                    conn.execute(step.encode())
            applied.append(difference)
        except psycopg.Error as exc:
            failed.append((difference, str(exc).strip().splitlines()[0]))
    if applied or failed:
        _record(conn, schemas, rules_version, applied, failed)
    return Evolution(applied, failed, schema_differences(conn, schemas, entities))


def _record(
    conn: psycopg.Connection,
    schemas: Schemas,
    rules_version: str,
    applied: list[Difference],
    failed: list[tuple[Difference, str]],
) -> None:
    steps = [{"table": d.table, "what": d.what, "sql": d.fix} for d in applied]
    refused = [{"table": d.table, "what": d.what, "sql": d.fix, "error": error} for d, error in failed]
    conn.execute(
        sql.SQL("INSERT INTO {} (rules_version, applied, refused) VALUES (%s, %s, %s)").format(
            sql.Identifier(schemas.migration, "schema_migrations")
        ),
        (rules_version, Jsonb(steps), Jsonb(refused)),
    )


def _required_catalog(
    conn: psycopg.Connection, entities: Mapping[str, Entity], tables: list[str]
) -> dict[str, LiveTable]:
    """The tables the rules require, built as temporary tables, read back, and undone."""
    with conn.transaction() as tx:
        for name in load_order(entities):
            conn.execute(table_sql(entities[name], entities, "pg_temp").encode())
        required = read_catalog(conn, temp_schema_name(conn), tables)
        raise psycopg.Rollback(tx)
    return required


def _column_differences(table: str, target: str, want: LiveTable, have: LiveTable) -> list[Difference]:
    found = []
    for name, column in want.columns.items():
        if column.identity:
            continue  # the surrogate key comes with the table
        quoted = sql.Identifier(name).as_string()
        alter = f"ALTER TABLE {target} ALTER COLUMN {quoted}"
        live = have.columns.get(name)
        if live is None:
            default = f" DEFAULT {column.default}" if column.default is not None else ""
            steps = (f"ALTER TABLE {target} ADD COLUMN {quoted} {column.sql_type}{default};",)
            if column.not_null:
                steps += (f"{alter} SET NOT NULL;",)
            found.append(Difference(table, f"column {name} is missing", steps))
            continue
        if live.sql_type != column.sql_type:
            found.append(
                Difference(
                    table,
                    f"column {name} is {live.sql_type}; the rules say {column.sql_type}",
                    (f"{alter} TYPE {column.sql_type} USING {quoted}::{column.sql_type};",),
                )
            )
        if live.default != column.default:
            fix = f"{alter} SET DEFAULT {column.default};" if column.default is not None else f"{alter} DROP DEFAULT;"
            found.append(
                Difference(table, f"column {name} defaults to {live.default}; the rules say {column.default}", (fix,))
            )
        if live.not_null != column.not_null:
            word = "SET" if column.not_null else "DROP"
            rule = "NOT NULL" if column.not_null else "nullable"
            found.append(Difference(table, f"column {name} must be {rule}", (f"{alter} {word} NOT NULL;",)))
    return found


def _constraint_differences(table: str, target: str, app: str, want: LiveTable, have: LiveTable) -> list[Difference]:
    found = []
    for name, constraint in want.constraints.items():
        live = have.constraints.get(name)
        quoted = sql.Identifier(name).as_string()
        add = _add_constraint(target, quoted, app, constraint)
        if live is None:
            found.append(Difference(table, f"constraint {name} is missing: {constraint.definition}", add))
        elif (live.kind, live.definition) != (constraint.kind, constraint.definition):
            found.append(
                Difference(
                    table,
                    f"constraint {name} is {live.definition}; the rules say {constraint.definition}",
                    (f"ALTER TABLE {target} DROP CONSTRAINT {quoted};", *add),
                )
            )
        elif not live.validated:
            found.append(
                Difference(
                    table,
                    f"constraint {name} is not validated: existing rows may break it",
                    (f"ALTER TABLE {target} VALIDATE CONSTRAINT {quoted};",),
                )
            )
    ours = re.compile(rf"{re.escape(table)}_({'|'.join(map(re.escape, want.columns))})_(check\d*|fkey)")
    for name, live in have.constraints.items():
        if name not in want.constraints and live.kind in "cf" and ours.fullmatch(name):
            quoted = sql.Identifier(name).as_string()
            found.append(
                Difference(
                    table,
                    f"constraint {name} is no longer a rule: {live.definition}",
                    (f"ALTER TABLE {target} DROP CONSTRAINT {quoted};",),
                )
            )
    return found


def _add_constraint(target: str, quoted: str, app: str, constraint: LiveConstraint) -> tuple[str, ...]:
    definition = constraint.definition
    if constraint.kind == "f":
        definition = definition.replace("REFERENCES ", f"REFERENCES {sql.Identifier(app).as_string()}.", 1)
    if constraint.kind not in "cf":
        return (f"ALTER TABLE {target} ADD CONSTRAINT {quoted} {definition};",)
    # NOT VALID first: new rows are held to it at once; existing ones are proved by VALIDATE, which may fail alone.
    return (
        f"ALTER TABLE {target} ADD CONSTRAINT {quoted} {definition} NOT VALID;",
        f"ALTER TABLE {target} VALIDATE CONSTRAINT {quoted};",
    )


def _index_differences(table: str, target: str, app: str, want: LiveTable, have: LiveTable) -> list[Difference]:
    found = []
    for name, definition in want.indexes.items():
        live = have.indexes.get(name)
        if live == definition:
            continue
        quoted = sql.Identifier(name).as_string()
        head, rest = definition.split(" USING ", 1)  # "CREATE [UNIQUE] INDEX", "btree (...)"
        create = f"{head} {quoted} ON {target} USING {rest}"
        if live is None:
            found.append(Difference(table, f"index {name} is missing", (f"{create};",)))
        else:
            drop = f"DROP INDEX {sql.Identifier(app, name).as_string()};"
            found.append(Difference(table, f"index {name} is {live}; the rules say {definition}", (drop, f"{create};")))
    return found
