"""The Phase 2 tables generated from the field table, on a real PostgreSQL: the database refuses what the mapper rejects."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema import phase2_sql
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES, Entity, Kind
from culturebridge_migration.mapping.mapper import RefLookup, map_records, row_columns

pytestmark = pytest.mark.integration
T0 = "2025-11-05T14:03:22.120Z"


def test_schema_creation_is_idempotent(db: Phase2Database) -> None:
    ensure_schema(db.conn, db.schemas)
    db.execute(phase2_sql("public"))  # even run again by hand
    tables = db.scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
    assert tables == len(ENTITIES)


def test_schema_columns_match_the_field_table(db: Phase2Database) -> None:
    for entity in ENTITIES.values():
        columns = [
            name
            for (name,) in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
                " ORDER BY ordinal_position",
                (entity.table,),
            )
        ]
        assert columns == ["id", *row_columns(entity)], entity.table


def _probe(db: Phase2Database, table: str, row: dict[str, object]) -> str | None:
    """Insert `row` in a savepoint that is always undone; the name of the constraint that refused it, if any."""
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    try:
        with db.transaction():
            db.execute(f"INSERT INTO public.{table} ({columns}) VALUES ({placeholders})", list(row.values()))
            raise _Undo
    except _Undo:
        return None
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:  # a constraint, or the column's type
        return exc.diag.constraint_name or type(exc).__name__


class _Undo(Exception):
    pass


def _valid_rows(db: Phase2Database) -> dict[str, dict[str, object]]:
    """A row each table accepts, by entity, for the entities that have bounded numbers."""
    user_id = db.scalar(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
        " VALUES ('u1', 'u1@example.com', 'coach', now(), now()) RETURNING id"
    )
    booking_id = db.scalar(
        "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, created_at,"
        " updated_at) VALUES ('b1', %s, %s, now(), 30, 'pending', now(), now()) RETURNING id",
        (user_id, user_id),
    )
    stamps = {"created_at": T0, "updated_at": T0}
    return {
        "coach_profiles": {"bubble_id": "c1", "user_id": user_id, **stamps},
        "bookings": {
            "bubble_id": "b2",
            "client_id": user_id,
            "coach_id": user_id,
            "session_start": T0,
            "duration_minutes": 30,
            "status": "pending",
            **stamps,
        },
        "payments": {"bubble_id": "p1", "booking_id": booking_id, "amount": 10, "status": "pending", **stamps},
    }


def _record(entity: Entity, source: str, value: object) -> dict:
    """A record whose every required field is valid, and `source` holds `value`."""
    base = {
        "coach_profiles": {"User": "1x1"},
        "bookings": {"Client": "1x1", "Coach": "1x1", "Session Start": T0, "Duration Minutes": 30, "Status": "Pending"},
        "payments": {"Booking": "2x1", "Amount": 10, "Status": "Pending"},
    }[entity.name]
    return {"_id": "9x1", "Created Date": T0, **base, source: value}


def test_every_bound_of_the_field_table_is_the_tables_check_at_its_edges(db: Phase2Database) -> None:
    # For each bounded number the database must accept and refuse exactly what the mapper does.
    rows = _valid_rows(db)
    refs = {"users": RefLookup({"1x1": 1}), "bookings": RefLookup({"2x1": 1})}
    bounded = [(e, f) for e in ENTITIES.values() for f in e.fields if f.bounds is not None]
    assert {e.name for e, _ in bounded} == set(rows)  # a new bounded field needs a valid row here
    for entity, spec in bounded:
        step = Decimal(1) if spec.kind is Kind.INTEGER else Decimal("0.01")
        for value in (spec.bounds.low - step, spec.bounds.low, spec.bounds.high, spec.bounds.high + step):
            mapper_accepts = bool(map_records(entity, [_record(entity, spec.source, value)], refs).rows)
            refused_by = _probe(db, entity.table, {**rows[entity.name], spec.column: value})
            assert mapper_accepts == (refused_by is None), (entity.name, spec.column, value, refused_by)


def test_every_enumeration_of_the_field_table_is_the_tables_check(db: Phase2Database) -> None:
    user = {"bubble_id": "u9", "email": "u9@example.com", "created_at": T0, "updated_at": T0}
    spec = ENTITIES["users"].field("role")
    for value in spec.stored_values:
        assert _probe(db, "users", {**user, "role": value}) is None
    assert _probe(db, "users", {**user, "role": "mentor"}) == "users_role_check"


def test_the_table_refuses_emails_the_mapper_rejects(db: Phase2Database) -> None:
    user = {"bubble_id": "u9", "role": "client", "created_at": T0, "updated_at": T0}
    assert _probe(db, "users", {**user, "email": "ana@example.com"}) is None
    for bad in ("Ana@Example.com", " ana@example.com", "not-an-email", "a@b"):
        assert _probe(db, "users", {**user, "email": bad}) == "users_email_check", bad


def test_a_plain_text_password_can_never_be_stored(db: Phase2Database) -> None:
    user = {"bubble_id": "u9", "email": "u9@example.com", "role": "client", "created_at": T0, "updated_at": T0}
    assert _probe(db, "users", {**user, "password_hash": "hunter2"}) == "users_password_hash_check"
    assert _probe(db, "users", {**user, "password_hash": "$2b$10$" + "a" * 53}) == "users_password_hash_check"
    assert _probe(db, "users", {**user, "password_hash": "$2b$12$" + "a" * 53}) is None


@pytest.mark.parametrize("name", ["Public", "app-schema", "x{mig}", "pct%", "a" * 64, ""])
def test_schema_names_outside_postgresqls_plain_identifiers_are_refused_before_any_sql(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain PostgreSQL identifier"):
        Schemas(app=name)
    with pytest.raises(ValueError, match="not a plain PostgreSQL identifier"):
        Schemas(migration=name)


def test_tables_and_bookkeeping_can_live_in_schemas_of_their_own(database_url: str) -> None:
    from culturebridge_migration.loading.database import connect

    schemas = Schemas(app="phase2_app", migration="phase2_mig")
    with connect(database_url) as conn:
        ensure_schema(conn, schemas)
        found = {
            (schema, table)
            for schema, table in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE 'phase2_%'"
            )
        }
    assert {("phase2_app", e.table) for e in ENTITIES.values()} <= found
    assert ("phase2_mig", "rejects") in found


def test_every_text_length_limit_is_the_tables_check_at_its_edge(db: Phase2Database) -> None:
    user = {"bubble_id": "u9", "email": "u9@example.com", "role": "client", "created_at": T0, "updated_at": T0}
    record = {
        "_id": "u9",
        "Created Date": T0,
        "authentication": {"email": {"email": "u9@example.com"}},
        "Role": "Client",
    }
    texts = [f for f in ENTITIES["users"].fields if f.kind is Kind.TEXT]
    assert texts and all(f.length_limit for f in texts)
    for spec in texts:
        for length in (spec.length_limit, spec.length_limit + 1):
            mapper_accepts = bool(map_records(ENTITIES["users"], [{**record, spec.source: "x" * length}]).rows)
            refused_by = _probe(db, "users", {**user, spec.column: "x" * length})
            assert mapper_accepts == (refused_by is None) == (length == spec.length_limit), (spec.column, length)


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://cdn.example.com/a.png?x=1", True),
        ("HTTP://example.com", True),
        ("file:///srv/migration_files/ab/cd.png", True),  # a copy in a local folder, linked without a public URL
        ("javascript:alert(document.cookie)", False),
        ("data:text/html,<script>1</script>", False),
        ("https://exa mple.com/", False),
        ("https:///no-host", False),
        ("//s3.amazonaws.com/x.png", False),  # the mapper writes it as https: first
    ],
)
def test_a_url_column_holds_only_web_links(db: Phase2Database, url: str, stored: bool) -> None:
    resource = {"bubble_id": "r9", "title": "Guide", "created_at": T0, "updated_at": T0}
    assert (_probe(db, "resources", {**resource, "url": url}) is None) == stored


def test_a_list_of_text_column_refuses_items_longer_together_than_its_limit(db: Phase2Database) -> None:
    resource = {"bubble_id": "r9", "title": "Guide", "created_at": T0, "updated_at": T0}
    limit = ENTITIES["resources"].field("tags").length_limit
    assert _probe(db, "resources", {**resource, "tags": ["x" * (limit - 1), "y"]}) is None
    assert _probe(db, "resources", {**resource, "tags": ["x" * limit, "y"]}) == "resources_tags_check"
