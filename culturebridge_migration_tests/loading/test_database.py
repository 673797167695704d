"""Connecting to Phase 2: a server that cannot be reached is one clear message, without the password."""

from __future__ import annotations

import pytest

from culturebridge_migration.loading.database import DatabaseUnavailable, connect


def test_unreachable_database_names_what_to_fix() -> None:
    with (
        pytest.raises(DatabaseUnavailable, match="Check DATABASE_URL") as err,
        connect("postgresql://u:secret@127.0.0.1:1/db"),
    ):
        pass
    assert "secret" not in str(err.value)
