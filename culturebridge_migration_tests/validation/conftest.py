"""A Phase 2 database on a fresh database, for the checks that read one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema


@pytest.fixture
def db(database_url: str) -> Iterator[Phase2Database]:
    with connect(database_url) as connection:
        ensure_schema(connection, Schemas())
        yield Phase2Database(connection)
