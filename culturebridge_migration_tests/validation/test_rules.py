"""Data rules: derived from the field table, and each one finds its offending rows on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest

from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES, Bounds
from culturebridge_migration.validation.checks import run_rule
from culturebridge_migration.validation.rules import RULES, field_rule


def test_the_rules_are_the_ones_the_asset_checks_promise() -> None:
    assert {(r.name, r.entity, r.severity) for r in RULES} == {
        ("valid_emails", "users", "ERROR"),
        ("hourly_rate_in_range", "coach_profiles", "ERROR"),
        ("duration_positive", "bookings", "ERROR"),
        ("amount_positive", "payments", "ERROR"),
        *((f"no_orphaned_{name}", name, "ERROR") for name in ENTITIES if ENTITIES[name].refs),
        ("clients_have_profiles", "client_profiles", "WARN"),
        ("coaches_have_profiles", "coach_profiles", "WARN"),
        ("confirmed_bookings_have_payment", "payments", "WARN"),
    }


def test_a_range_rule_says_the_field_tables_bounds() -> None:
    coaches = ENTITIES["coach_profiles"]
    rate = coaches.field("hourly_rate")
    assert "between" not in field_rule(coaches, rate).query.lower()
    assert '"hourly_rate" >= 25 AND "hourly_rate" <= 500' in field_rule(coaches, rate).query
    assert "hourly rate (USD) is >= 25 and <= 500" in field_rule(coaches, rate).description
    wider = dataclasses.replace(rate, bounds=Bounds(Decimal(10), Decimal(900)))
    assert '"hourly_rate" >= 10 AND "hourly_rate" <= 900' in field_rule(coaches, wider).query


def test_orphan_rules_cover_every_reference_of_the_field_table() -> None:
    bookings = next(r for r in RULES if r.name == "no_orphaned_bookings")
    assert '"client_id"' in bookings.query and '"coach_id"' in bookings.query
    assert bookings.description == "Every booking's client and coach exist in Phase 2."
    resources = next(r for r in RULES if r.name == "no_orphaned_resources")
    assert 'c."uploaded_by" IS NOT NULL' in resources.query  # an empty optional reference is no orphan


@pytest.fixture
def unguarded(database_url: str) -> Iterator[Phase2Database]:
    """Phase 2 whose app team dropped every CHECK and foreign key: only the rules stand guard."""
    with connect(database_url, autocommit=True) as conn:
        ensure_schema(conn, Schemas())
        for table, constraint in conn.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype IN ('c', 'f') AND connamespace = 'public'::regnamespace"
        ).fetchall():
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
        yield Phase2Database(conn)


@pytest.mark.integration
def test_every_rule_finds_exactly_the_rows_that_break_it(unguarded: Phase2Database) -> None:
    db, now = unguarded, "now(), now()"
    db.execute(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at) VALUES"
        f" ('good-coach', 'c@x.io', 'coach', {now}), ('good-client', 'k@x.io', 'client', {now}),"
        f" ('bad-email', 'Not An Email', 'admin', {now}), ('lonely-coach', 'l@x.io', 'coach', {now})"
    )
    users = dict(db.execute("SELECT bubble_id, id FROM users"))
    coach, client = users["good-coach"], users["good-client"]
    db.execute(
        "INSERT INTO client_profiles (bubble_id, user_id, created_at, updated_at) VALUES"
        f" ('profile', %s, {now}), ('orphan-profile', -1, {now})",
        (client,),
    )
    db.execute(
        "INSERT INTO coach_profiles (bubble_id, user_id, hourly_rate, created_at, updated_at) VALUES"
        f" ('coach', %s, 80, {now}), ('too-dear', %s, 600, {now})",
        (coach, coach),
    )
    db.execute(
        "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, created_at,"
        f" updated_at) VALUES ('paid', %s, %s, now(), 30, 'confirmed', {now}),"
        f" ('unpaid', %s, %s, now(), 30, 'confirmed', {now}), ('no-time', %s, %s, now(), 0, 'pending', {now}),"
        f" ('ghost-coach', %s, -2, now(), 30, 'pending', {now})",
        (client, coach, client, coach, client, coach, client),
    )
    paid = db.scalar("SELECT id FROM bookings WHERE bubble_id = 'paid'")
    db.execute(
        "INSERT INTO payments (bubble_id, booking_id, amount, status, created_at, updated_at) VALUES"
        f" ('payment', %s, 20, 'succeeded', {now}), ('free', %s, 0, 'succeeded', {now}),"
        f" ('orphan-payment', -3, 20, 'succeeded', {now})",
        (paid, paid),
    )
    db.execute(
        "INSERT INTO community_posts (bubble_id, author_id, title, created_at, updated_at) VALUES"
        f" ('post', %s, 'Hi', {now}), ('ghost-author', -4, 'Hi', {now})",
        (client,),
    )
    post = db.scalar("SELECT id FROM community_posts WHERE bubble_id = 'post'")
    db.execute(
        "INSERT INTO community_comments (bubble_id, post_id, author_id, body, created_at, updated_at) VALUES"
        f" ('comment', %s, %s, 'Thanks', {now}), ('ghost-post', -5, %s, 'Thanks', {now})",
        (post, client, client),
    )
    db.execute(
        "INSERT INTO resources (bubble_id, title, uploaded_by, created_at, updated_at) VALUES"
        f" ('nobody-uploaded', 'Guide', NULL, {now}), ('ghost-uploader', 'Guide', -6, {now})"
    )
    found = {rule.name: run_rule(db, rule).sample_ids for rule in RULES}
    assert found == {
        "valid_emails": ["bad-email"],
        "no_orphaned_client_profiles": ["orphan-profile"],
        "no_orphaned_coach_profiles": [],
        "hourly_rate_in_range": ["too-dear"],
        "no_orphaned_bookings": ["ghost-coach"],
        "duration_positive": ["no-time"],
        "no_orphaned_payments": ["orphan-payment"],
        "amount_positive": ["free"],
        "no_orphaned_posts": ["ghost-author"],
        "no_orphaned_comments": ["ghost-post"],
        "no_orphaned_resources": ["ghost-uploader"],
        "clients_have_profiles": [],
        "coaches_have_profiles": ["lonely-coach"],
        "confirmed_bookings_have_payment": ["unpaid"],
    }
