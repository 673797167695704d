"""A Phase 2 database object on a fresh database, hand-written records, and a loader for them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.migrate import EntityOutcome, migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES

T0 = "2025-11-05T14:03:22.120Z"


def _users(*emails: str) -> list[dict]:
    return [
        {
            "_id": f"1x{i}",
            "Created Date": f"2025-11-0{i}T00:00:00.000Z",
            "Modified Date": T0,
            "authentication": {"email": {"email": email}},
            "Role": "Coach" if i == 2 else "Client",
        }
        for i, email in enumerate(emails, 1)
    ]


def _bookings(n: int) -> list[dict]:
    return [
        {
            "_id": f"2x{i}",
            "Created Date": T0,
            "Client": "1x1",
            "Coach": "1x2",
            "Session Start": "2025-12-01T10:00:00Z",
            "Duration Minutes": 60,
            "Status": "Confirmed",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def records() -> SimpleNamespace:
    """users(*emails): users 1x1, 1x2 (a coach), ...; bookings(n): bookings 2x0.. of client 1x1 with coach 1x2."""
    return SimpleNamespace(users=_users, bookings=_bookings)


@pytest.fixture
def db(database_url: str) -> Iterator[Phase2Database]:
    with connect(database_url) as connection:
        ensure_schema(connection, Schemas())
        yield Phase2Database(connection)


@pytest.fixture
def load(db: Phase2Database) -> Callable[..., EntityOutcome]:
    """load(entity, records, run_id, **options): one entity's records into Phase 2, as a table step does."""

    def run(entity: str, records: Iterable[dict], run_id: str, **options: object) -> EntityOutcome:
        return migrate_entity(db, ENTITIES[entity], records, run_id=run_id, job_name="test", **options)

    return run


@pytest.fixture
def table_sums(db: Phase2Database) -> Callable[[], dict[str, str]]:
    """Checksums of every table as this connection sees them (its own uncommitted writes included)."""

    def sums() -> dict[str, str]:
        return {
            e.table: hashlib.sha256(
                repr(db.execute(f"SELECT * FROM public.{e.table} ORDER BY id").fetchall()).encode()
            ).hexdigest()
            for e in ENTITIES.values()
        }

    return sums
