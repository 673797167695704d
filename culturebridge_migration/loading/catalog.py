"""What a schema's tables look like in PostgreSQL's own catalog: columns, constraints, indexes.

Read in PostgreSQL's normalised words (`format_type`, `pg_get_constraintdef`, `pg_get_indexdef`),
so two schemas made from the same DDL read the same, whatever spelling the DDL used. That is how
`schema_evolution.py` compares the live tables with the ones the rules require: both are read here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

import psycopg

# A foreign key names its target with or without a schema, depending on the search path.
_TARGET_SCHEMA = re.compile(r'REFERENCES (?:"[^"]+"|\w+)\.')
# An index definition names its table; what it indexes is what follows.
_INDEX_TABLE = re.compile(r"^(CREATE (?:UNIQUE )?INDEX) \S+ ON (?:ONLY )?\S+ ")


@dataclass(frozen=True)
class LiveColumn:
    sql_type: str  # as format_type() spells it: numeric(10,2), text[], timestamp with time zone
    not_null: bool
    default: str | None  # as pg_get_expr() spells it
    identity: bool


@dataclass(frozen=True)
class LiveConstraint:
    kind: str  # c (check), f (foreign key), u (unique), p (primary key)
    definition: str  # pg_get_constraintdef, with a foreign key's target schema left out
    validated: bool  # False: added NOT VALID, existing rows not (yet) proved to hold it


@dataclass
class LiveTable:
    columns: dict[str, LiveColumn] = field(default_factory=dict)
    constraints: dict[str, LiveConstraint] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)  # name -> "CREATE [UNIQUE] INDEX USING btree (...)"


_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%(tables)s)
ORDER BY c.relname, a.attnum
"""
# NOT NULL is read from the column (PostgreSQL 18 also lists it as a constraint of kind 'n').
_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.convalidated
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND k.contype IN ('c', 'f', 'u', 'p')
"""
# Indexes of their own; those behind a primary key or unique constraint are read as the constraint.
_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(schema)s AND t.relname = ANY(%(tables)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid AND k.conrelid = t.oid)
"""


def read_catalog(conn: psycopg.Connection, schema: str, tables: Collection[str]) -> dict[str, LiveTable]:
    """The named tables of `schema` that exist, as the catalog describes them."""
    params = {"schema": schema, "tables": list(tables)}
    live: dict[str, LiveTable] = {}
    for table, name, sql_type, not_null, default, identity in conn.execute(_COLUMNS, params):
        live.setdefault(table, LiveTable()).columns[name] = LiveColumn(sql_type, not_null, default, identity)
    for table, name, kind, definition, validated in conn.execute(_CONSTRAINTS, params):
        definition = _TARGET_SCHEMA.sub("REFERENCES ", definition.removesuffix(" NOT VALID"))  # `validated` says it
        live[table].constraints[name] = LiveConstraint(kind, definition, validated)
    for table, name, definition in conn.execute(_INDEXES, params):
        live[table].indexes[name] = _INDEX_TABLE.sub(r"\1 ", definition)
    return live


def temp_schema_name(conn: psycopg.Connection) -> str:
    """This session's temporary schema (pg_temp_N), once it holds something."""
    return conn.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()").fetchone()[0]
