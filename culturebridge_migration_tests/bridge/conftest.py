"""A Phase 2 database holding a small sample's users (as a cutover left them) and the sample's Bubble app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from types import SimpleNamespace

import pytest

from culturebridge_migration.bridge.config import BridgeConfig, Limits
from culturebridge_migration.bridge.login import PasswordBridge
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_login_password, sample_server_args
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import STRONG_HASHES, SampleData, generate_sample

KEY = "bridge-test-key"


@pytest.fixture(scope="session")
def small_sample() -> SampleData:
    return generate_sample(20)


def _migrated_users(sample: SampleData) -> list[dict]:
    """The sample's users as the export leaves them, without bcrypt work: plain legacy passwords dropped (the
    migration would hash them), the old system's strong hashes kept."""
    strong = set(STRONG_HASHES.values())
    return [{k: v for k, v in u.items() if k != "Legacy Password" or v in strong} for u in sample.records["users"]]


@pytest.fixture
def phase2(database_url: str, small_sample: SampleData) -> str:
    """DATABASE_URL of Phase 2 after a cutover run loaded the sample's users."""
    with connect(database_url) as conn:
        ensure_schema(conn, Schemas())
        migrate_entity(
            Phase2Database(conn), ENTITIES["users"], _migrated_users(small_sample), run_id="c1", job_name="cutover"
        )
    return database_url


@pytest.fixture
def bubble(small_sample: SampleData) -> Iterator[FakeBubble]:
    with FakeBubble(**sample_server_args(small_sample), api_key=KEY) as server:
        yield server


@pytest.fixture
def people(small_sample: SampleData) -> SimpleNamespace:
    """Sample users by what Phase 2 holds: `plain` has no hash (Bubble's password `plain_password`), `hashed` the
    old system's strong hash (its plain text `hashed_password`; Bubble's differs)."""
    users = small_sample.records["users"]
    plain = users[7]
    hashed = next(u for u in users if u.get("Legacy Password") == STRONG_HASHES["strong-legacy-1"])
    return SimpleNamespace(
        plain_email=plain["authentication"]["email"]["email"].strip().lower(),
        plain_id=plain["_id"],
        plain_password=sample_login_password(plain["_id"]),
        hashed_email=hashed["authentication"]["email"]["email"].strip().lower(),
        hashed_password="strong-legacy-1",
        hashed_bubble_password=sample_login_password(hashed["_id"]),
    )


@pytest.fixture
def make_bridge(phase2: str, bubble: FakeBubble) -> Callable[..., PasswordBridge]:
    """make_bridge(**config): a bridge on `phase2` asking `bubble`, with short timeouts."""

    def make(**changes: object) -> PasswordBridge:
        config = BridgeConfig(phase2, bubble.url, KEY, bubble_timeout=2.0, limits=Limits(account_free=3))
        return PasswordBridge(replace(config, **changes))

    return make


@pytest.fixture
def rows(phase2: str) -> Callable[[str], list[tuple]]:
    def query(text: str) -> list[tuple]:
        with connect(phase2) as conn:
            return conn.execute(text).fetchall()

    return query
