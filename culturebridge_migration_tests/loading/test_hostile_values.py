"""Hostile values on a real PostgreSQL: every record ends as a row or a reject, never as an exception."""

from __future__ import annotations

import pytest

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.verbatim import keep_verbatim
from culturebridge_migration.mapping.entities import UNREADABLE_KEY, extra_entity

pytestmark = pytest.mark.integration
T0 = "2025-11-05T14:03:22.120Z"


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def test_a_type_kept_verbatim_rejects_hostile_records_and_keeps_the_others(db: Phase2Database) -> None:
    records = [
        {"_id": "rv1", "Created Date": T0, "Stars": 5},
        {"_id": "rv2", "Created Date": deep(10_000), "Text": deep(10_000)},
        {"_id": deep(10_000)},
        {"_id": "rv\x004", "Created Date": T0},
        {"_id": "rv5", UNREADABLE_KEY: {"field": "Text", "message": "Text nests lists or objects too deep"}},
    ]
    db.register_run("run-1", "test")
    result, rejects, _, read = keep_verbatim(db, extra_entity("review"), records, "run-1")
    assert (read, result.loaded, len(rejects)) == (5, 1, 4)
    assert all(reject.message for reject in rejects)
