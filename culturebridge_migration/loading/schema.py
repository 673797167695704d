"""The Phase 2 tables' SQL, generated from the field table, and the bookkeeping schema's SQL.

The tables' SQL is derived, never written by hand: each column's type, NOT NULL, default and CHECK
constraints come from its `Field` (enumerations from its values, ranges from its `Bounds`), the
foreign keys from its references. So the database refuses exactly what the mapper rejects.
The bookkeeping schema (`sql/migration.sql`, `sql/files.sql`) is not about Bubble fields and stays hand-written.
Installing them, and bringing an older database up to today's rules, is `schema_evolution.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from psycopg import sql

from culturebridge_migration.mapping.entities import ENTITIES, Entity, Field, Kind, load_order
from culturebridge_migration.mapping.mapper import row_columns
from culturebridge_migration.mapping.passwords import HASH_SOURCES, STRONG_HASH_SQL_PATTERN
from culturebridge_migration.mapping.values import CURRENCY_PATTERN, EMAIL_PATTERN


@dataclass(frozen=True)
class Column:
    """One column of a Phase 2 table, as the DDL and the UI's table schema show it."""

    name: str
    sql_type: str
    not_null: bool
    description: str
    default: str | None = None  # a SQL literal
    checks: tuple[str, ...] = ()  # SQL conditions, each its own named CHECK constraint
    references: str | None = None  # the table whose id this column holds
    unique: bool = False


# The columns every table has beside its mapped fields.
_BUILT_IN = {
    # NULL on the rows the Phase 2 app creates after cutover: only migrated rows come from Bubble.
    "bubble_id": Column("bubble_id", "text", False, "Bubble _id (unique); NULL: a row the app created", unique=True),
    "password_reset_required": Column(
        "password_reset_required", "boolean", True, "no usable password came from Bubble", default="true"
    ),
    "bubble_created_by": Column(
        "bubble_created_by", "text", False, "Bubble Created By: a user's _id or a placeholder, never a foreign key"
    ),
    "created_at": Column("created_at", "timestamptz", True, "Bubble Created Date"),
    "updated_at": Column("updated_at", "timestamptz", True, "Bubble Modified Date"),
    "bubble_extra": Column(
        "bubble_extra", "jsonb", False, "every field of the Bubble record that no column maps, as Bubble sent it"
    ),
    "password_hash_source": Column(
        "password_hash_source",
        "text",
        False,
        "where password_hash came from: migration (Legacy Password), login_bridge (first login), NULL: the app",
        checks=(f"password_hash_source IN ({', '.join(sql.Literal(s).as_string() for s in HASH_SOURCES)})",),
    ),
    "password_hash_set_at": Column(
        "password_hash_set_at", "timestamptz", False, "when the login bridge stored password_hash"
    ),
}
ID_COLUMN = Column("id", "bigint", True, "surrogate key", unique=True)


def field_checks(spec: Field) -> tuple[str, ...]:
    """The SQL conditions a field's values must meet: the field table's rules, as the database checks them."""
    column = sql.Identifier(spec.column).as_string()
    checks = []
    if spec.kind is Kind.EMAIL:
        checks.append(f"{column} = lower(btrim({column})) AND {column} ~ {sql.Literal(EMAIL_PATTERN).as_string()}")
    if spec.kind is Kind.ENUM and spec.values:
        allowed = ", ".join(sql.Literal(value).as_string() for value in spec.stored_values)
        checks.append(f"{column} IN ({allowed})")
    if spec.kind is Kind.CURRENCY:
        checks.append(f"{column} ~ {sql.Literal(CURRENCY_PATTERN).as_string()}")
    if spec.kind is Kind.PASSWORD:
        checks.append(f"{column} ~ {sql.Literal(STRONG_HASH_SQL_PATTERN).as_string()}")
    if spec.bounds is not None:
        checks.append(spec.bounds.sql(column))
    if spec.length_limit is not None:
        text = f"array_to_string({column}, '')" if spec.kind is Kind.LIST else column
        checks.append(f"char_length({text}) <= {spec.length_limit}")
    if spec.kind is Kind.URL:
        from culturebridge_migration.mapping.values import STORED_URL_PATTERN

        checks.append(f"{column} ~* {sql.Literal(STORED_URL_PATTERN).as_string()}")
    return tuple(checks)


def _default(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return sql.Literal(list(value)).as_string()
    return sql.Literal(value).as_string()


def table_columns(entity: Entity, entities: Mapping[str, Entity] = ENTITIES) -> list[Column]:
    """Every column of the entity's table, in table order."""
    fields = {f.column: f for f in entity.fields}
    columns = [ID_COLUMN]
    for name in row_columns(entity):
        spec = fields.get(name)
        if spec is None:
            columns.append(_BUILT_IN[name])
            continue
        columns.append(
            Column(
                name,
                spec.sql_type,
                spec.not_null,
                f"from Bubble '{spec.source}'",
                default=_default(spec.default),
                checks=field_checks(spec),
                references=entities[spec.ref].table if spec.ref else None,
            )
        )
    return columns


def _column_sql(entity: Entity, column: Column, app: str) -> str:
    name = sql.Identifier(column.name).as_string()
    if column is ID_COLUMN:
        return f"{name} bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    parts = [name, column.sql_type]
    if column.not_null:
        parts.append("NOT NULL")
    if column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    if column.unique:
        parts.append("UNIQUE")
    for i, condition in enumerate(column.checks):
        suffix = "check" if i == 0 else f"check{i}"
        constraint = sql.Identifier(f"{entity.table}_{column.name}_{suffix}").as_string()
        parts.append(f"CONSTRAINT {constraint} CHECK ({condition})")
    if column.references:
        constraint = sql.Identifier(f"{entity.table}_{column.name}_fkey").as_string()
        target = sql.Identifier(app, column.references).as_string()
        parts.append(f"CONSTRAINT {constraint} REFERENCES {target} (id)")
    return " ".join(parts)


def table_sql(entity: Entity, entities: Mapping[str, Entity], app: str) -> str:
    """One table as the rules require it, with its indexes; idempotent. `app` may be pg_temp (a scratch copy)."""
    table = sql.Identifier(app, entity.table).as_string()
    columns = table_columns(entity, entities)
    body = ",\n    ".join(_column_sql(entity, column, app) for column in columns)
    # A table made by an earlier version is brought up to this one by schema_evolution.py, not here.
    statements = [f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n);"]
    for column in columns:
        if column.references:  # foreign-key checks and child lookups by parent
            index = sql.Identifier(f"{entity.table}_{column.name}_idx").as_string()
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({sql.Identifier(column.name).as_string()});"
            )
    for spec in entity.fields:
        if spec.kind is Kind.EMAIL:  # people log in with it: one account per address, whatever its case
            index = sql.Identifier(f"{entity.table}_{spec.column}_lower_key").as_string()
            column = sql.Identifier(spec.column).as_string()
            statements.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} (lower({column}));")
    return "\n".join(statements)


def phase2_sql(app_schema: str, entities: Mapping[str, Entity] = ENTITIES) -> str:
    """Every Phase 2 table, parents before children. Idempotent: safe to run before every migration."""
    app = sql.Identifier(app_schema).as_string()
    tables = [table_sql(entities[name], entities, app_schema) for name in load_order(entities)]
    return "\n\n".join([f"CREATE SCHEMA IF NOT EXISTS {app};", *tables]) + "\n"


# The bookkeeping schema: the runs and their effects; what became of each Bubble file (files/ writes it);
# what the app changed after cutover (change_capture.py).
BOOKKEEPING_SCRIPTS = ("migration.sql", "files.sql", "capture.sql")


def bookkeeping_sql(migration_schema: str, scripts: Sequence[str] = BOOKKEEPING_SCRIPTS) -> str:
    """The packaged bookkeeping SQL (`scripts` of sql/) with {mig} replaced by the quoted schema name.

    Plain replacement, not str.format: the files hold braces of their own. `Schemas` has already
    refused any name that quoting could not make safe.
    """
    folder = resources.files("culturebridge_migration.loading").joinpath("sql")
    text = "\n".join(folder.joinpath(name).read_text() for name in scripts)
    return text.replace("{mig}", sql.Identifier(migration_schema).as_string())
