"""Connecting to Phase 2: a server that cannot be reached is one clear message, without the password."""

from __future__ import annotations

import os
import pwd

import pytest

from culturebridge_migration.loading.database import DatabaseUnavailable, connect, require_system_user


def test_unreachable_database_names_what_to_fix() -> None:
    with (
        pytest.raises(DatabaseUnavailable, match="Check DATABASE_URL") as err,
        connect("postgresql://u:secret@127.0.0.1:1/db"),
    ):
        pass
    assert "secret" not in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a system user for the embedded server")
def test_as_root_a_missing_system_user_is_named_with_the_command_that_makes_it_and_never_made() -> None:
    user = "culturebridge-no-such-user"
    with pytest.raises(DatabaseUnavailable, match=f"useradd --system --no-create-home {user}"):
        require_system_user(user)
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
