"""A database made with last month's rules, met by today's: compared, mended and recorded, or refused with the SQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal

import psycopg
import pytest

from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import (
    SchemaDiffers,
    SchemaOwner,
    ensure_schema,
    fix_script,
    schema_differences,
)
from culturebridge_migration.mapping.entities import ENTITIES, Entity, Kind, between
from culturebridge_migration.sources.export_store import ExportManifest
from culturebridge_migration.validation.checks import CheckInputs, check_schema_matches_rules
from culturebridge_migration.validation.export_digest import ExportDigest

pytestmark = pytest.mark.integration


def _replace_field(entities: Mapping[str, Entity], name: str, column: str, **changes: object) -> dict[str, Entity]:
    entity = entities[name]
    fields = tuple(dataclasses.replace(f, **changes) if f.column == column else f for f in entity.fields)
    return {**entities, name: dataclasses.replace(entity, fields=fields)}


def _without_field(entities: Mapping[str, Entity], name: str, column: str) -> dict[str, Entity]:
    entity = entities[name]
    return {**entities, name: dataclasses.replace(entity, fields=tuple(f for f in entity.fields if f.column != column))}


def last_months_rules() -> dict[str, Entity]:
    """Today's field table as it was a month ago: five rules have changed since."""
    rules = _without_field(ENTITIES, "users", "timezone")  # a column added since
    rules = _replace_field(rules, "users", "phone", required=True)  # NOT NULL then, optional now
    rate = ENTITIES["coach_profiles"].field("hourly_rate")
    rules = _replace_field(rules, "coach_profiles", "hourly_rate", digits=(8, 2), bounds=between("10", "1000"))
    assert rate.bounds != between("10", "1000")  # the range really changed
    kinds = {k: v for k, v in ENTITIES["resources"].field("resource_type").values.items() if k != "Worksheet"}
    rules = _replace_field(rules, "resources", "resource_type", values=kinds)  # an option added since
    return _replace_field(rules, "bookings", "coach_id", kind=Kind.TEXT, ref=None)  # a key since


@pytest.fixture
def last_month(database_url: str) -> Iterator[psycopg.Connection]:
    """A database whose tables last month's rules made, holding a coach and a booking."""
    with connect(database_url) as conn:
        ensure_schema(conn, Schemas(), last_months_rules())
        with conn.transaction():
            user = conn.execute(
                "INSERT INTO users (bubble_id, email, role, phone, created_at, updated_at) "
                "VALUES ('u1', 'coach@example.com', 'coach', '+1 555', now(), now()) RETURNING id"
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO coach_profiles (bubble_id, user_id, hourly_rate, created_at, updated_at) "
                "VALUES ('c1', %s, 120, now(), now())",
                (user,),
            )
            conn.execute(
                "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, "
                "created_at, updated_at) VALUES ('b1', %s, %s, now(), 60, 'pending', now(), now())",
                (user, str(user)),
            )
        yield conn


def _whats(conn: psycopg.Connection, entities: Mapping[str, Entity] = ENTITIES) -> list[str]:
    return [f"{d.table}: {d.what}" for d in schema_differences(conn, Schemas(), entities)]


def test_todays_rules_find_every_change_since_last_month(last_month: psycopg.Connection) -> None:
    found = _whats(last_month)
    assert "users: column timezone is missing" in found
    assert "users: column phone must be nullable" in found
    assert "coach_profiles: column hourly_rate is numeric(8,2); the rules say numeric(10,2)" in found
    assert any(w.startswith("coach_profiles: constraint coach_profiles_hourly_rate_check is") for w in found)
    assert any(w.startswith("resources: constraint resources_resource_type_check is") for w in found)
    assert "bookings: column coach_id is text; the rules say bigint" in found
    assert any(w.startswith("bookings: constraint bookings_coach_id_fkey is missing") for w in found)
    assert "bookings: index bookings_coach_id_idx is missing" in found
    assert _whats(last_month, last_months_rules()) == []  # and nothing where the rules did not change


def test_a_database_made_today_has_no_differences(database_url: str) -> None:
    with connect(database_url) as conn:
        ensure_schema(conn, Schemas())
        assert _whats(conn) == []


def test_migration_owned_schema_is_mended_recorded_and_keeps_its_rows(last_month: psycopg.Connection) -> None:
    evolution = ensure_schema(last_month, Schemas())

    assert evolution is not None and evolution.failed == [] and evolution.remaining == []
    assert _whats(last_month) == []
    assert last_month.execute("SELECT hourly_rate FROM coach_profiles").fetchone()[0] == Decimal("120.00")
    applied = last_month.execute("SELECT applied, refused FROM migration.schema_migrations ORDER BY id").fetchall()
    assert len(applied) == 2 and applied[1][1] == []  # last month's tables made, then today's changes
    assert {step["what"] for step in applied[1][0]} >= {"column timezone is missing", "column phone must be nullable"}
    assert ensure_schema(last_month, Schemas()) is None  # up to date: nothing compared, nothing recorded
    with pytest.raises(psycopg.errors.CheckViolation), last_month.transaction():  # today's range holds
        last_month.execute("UPDATE coach_profiles SET hourly_rate = 900")


def test_a_fix_existing_rows_break_stays_a_difference_with_postgresqls_reason(
    last_month: psycopg.Connection,
) -> None:
    last_month.execute("UPDATE coach_profiles SET hourly_rate = 800")  # fine last month, out of range today
    last_month.commit()

    evolution = ensure_schema(last_month, Schemas())

    assert evolution is not None
    (refused,) = [(d.what, error) for d, error in evolution.failed if d.table == "coach_profiles"]
    assert "coach_profiles_hourly_rate_check" in refused[0] and "violated by some row" in refused[1]
    remaining = [f"{d.table}: {d.what}" for d in evolution.remaining]
    assert remaining == [
        "coach_profiles: constraint coach_profiles_hourly_rate_check is not validated: existing rows may break it"
    ]
    with pytest.raises(psycopg.errors.CheckViolation), last_month.transaction():  # new rows are held to it already
        last_month.execute("UPDATE coach_profiles SET hourly_rate = 900")


def test_app_owned_schema_stops_with_the_differences_and_the_sql_that_mends_them(
    last_month: psycopg.Connection,
) -> None:
    with pytest.raises(SchemaDiffers) as raised:
        ensure_schema(last_month, Schemas(), owner=SchemaOwner.APP)

    message = str(raised.value)
    assert "MIGRATION_SCHEMA_OWNER=app" in message and "ALTER TABLE" in message
    assert _whats(last_month) != []  # nothing applied
    # The app team applies the SQL with their own migrations; then the run goes on.
    last_month.execute(fix_script(raised.value.differences).encode())
    last_month.commit()
    assert _whats(last_month) == []
    assert ensure_schema(last_month, Schemas(), owner=SchemaOwner.APP) is not None


def test_missing_tables_are_created_in_a_new_app_schema(new_database: Callable[[], str]) -> None:
    schemas = Schemas(app="phase2", migration="mig")
    with connect(new_database()) as conn:
        evolution = ensure_schema(conn, schemas)
        assert evolution is not None and len(evolution.applied) == len(ENTITIES)
        assert schema_differences(conn, schemas) == []


def _schema_check(conn: psycopg.Connection, name: str) -> tuple[bool, int, dict[str, object]]:
    entity = ENTITIES[name]
    manifest = ExportManifest(name, entity.bubble_type, "test", 0, 0, 0, 0, "now", "t")
    inputs = CheckInputs(
        Phase2Database(conn), entity, ExportDigest(entity, 1, seed=1), manifest, 1, DeletedRecords.FLAG
    )
    outcome = check_schema_matches_rules(inputs)
    return outcome.passed, outcome.offending, outcome.details


def test_schema_check_fails_on_a_table_last_months_rules_made_and_gives_the_sql(last_month: psycopg.Connection) -> None:
    passed, offending, details = _schema_check(last_month, "coach_profiles")
    assert not passed and offending == 3  # the column's type, and its range: the old dropped, the new added
    assert "column hourly_rate is numeric(8,2); the rules say numeric(10,2)" in details["differences"]
    assert 'ALTER TABLE "public"."coach_profiles" ALTER COLUMN "hourly_rate" TYPE' in details["fix_sql"]
    assert _schema_check(last_month, "payments")[:2] == (True, 0)  # a table whose rules did not change

    ensure_schema(last_month, Schemas())
    assert _schema_check(last_month, "coach_profiles")[:2] == (True, 0)


@pytest.fixture
def yesterday(database_url: str) -> Iterator[psycopg.Connection]:
    """A database made before the app could create rows: every table's bubble_id NOT NULL, one user in it."""
    with connect(database_url) as conn:
        ensure_schema(conn, Schemas())
        with conn.transaction():
            for entity in ENTITIES.values():
                conn.execute(f"ALTER TABLE public.{entity.table} ALTER COLUMN bubble_id SET NOT NULL")
            conn.execute("DELETE FROM migration.schema_version")  # yesterday's rules were another version
            conn.execute(
                "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
                " VALUES ('u1', 'a@example.com', 'client', now(), now())"
            )
        yield conn


def test_yesterdays_not_null_bubble_id_becomes_nullable_and_stays_unique(yesterday: psycopg.Connection) -> None:
    assert "users: column bubble_id must be nullable" in _whats(yesterday)

    ensure_schema(yesterday, Schemas())

    assert _whats(yesterday) == []
    with yesterday.transaction():  # the app's own rows: no Bubble id, as many as it likes
        for email in ("n1@example.com", "n2@example.com"):
            yesterday.execute(
                "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
                " VALUES (NULL, %s, 'client', now(), now())",
                (email,),
            )
    with pytest.raises(psycopg.errors.UniqueViolation), yesterday.transaction():
        yesterday.execute(
            "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
            " VALUES ('u1', 'b@example.com', 'client', now(), now())"
        )


def test_yesterdays_not_null_bubble_id_is_a_difference_the_app_owned_schema_reports(
    yesterday: psycopg.Connection,
) -> None:
    with pytest.raises(SchemaDiffers, match='ALTER COLUMN "bubble_id" DROP NOT NULL'):
        ensure_schema(yesterday, Schemas(), owner=SchemaOwner.APP)
    passed, offending, details = _schema_check(yesterday, "payments")
    assert not passed and offending == 1
    assert "column bubble_id must be nullable" in details["differences"]
