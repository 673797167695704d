"""Legacy passwords: hashed before anything touches disk, kept only as strong bcrypt hashes. Pure."""

from __future__ import annotations

import re

import bcrypt
import pytest

from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.mapper import map_records
from culturebridge_migration.mapping.passwords import (
    BCRYPT_COST,
    STRONG_HASH_SQL_PATTERN,
    PasswordGuard,
    is_strong_hash,
    protect_record_passwords,
    secure_password,
)

T0 = "2025-11-05T14:03:22.120Z"


def user(bubble_id: str, email: str = "ana@example.com", **fields: object) -> dict:
    return {
        "_id": bubble_id,
        "Created Date": T0,
        "authentication": {"email": {"email": email}},
        "Role": "Client",
        **fields,
    }


def test_plain_password_is_hashed_with_cost_12_and_verifies() -> None:
    hashed = secure_password("correct horse")
    assert hashed.startswith("$2b$12$") and bcrypt.checkpw(b"correct horse", hashed.encode())


def test_strong_hash_is_kept_and_weak_hash_is_dropped() -> None:
    strong = bcrypt.hashpw(b"pw", bcrypt.gensalt(12)).decode()
    weak = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    assert secure_password(strong) == strong
    assert secure_password(weak) is None


def test_export_replaces_plain_passwords_and_user_without_one_must_reset() -> None:
    records = [user("1x1", **{"Legacy Password": "hunter2"}), user("1x2", "b@example.com")]
    assert protect_record_passwords(records, ["Legacy Password"], workers=2) == 1
    assert "hunter2" not in str(records)
    rows = map_records(ENTITIES["users"], records).rows
    assert bcrypt.checkpw(b"hunter2", rows[0]["password_hash"].encode())
    assert rows[0]["password_reset_required"] is False
    assert (rows[1]["password_hash"], rows[1]["password_reset_required"]) == (None, True)


def test_a_record_bubble_did_not_modify_keeps_the_hash_phase2_holds() -> None:
    kept = bcrypt.hashpw(b"old", bcrypt.gensalt(4)).decode()  # any value: it is not hashed again
    records = [user("1x1", **{"Legacy Password": "plain", "Modified Date": T0})]
    guard = PasswordGuard(["Legacy Password"], {("1x1", T0): kept}, workers=1)
    guard(records)
    assert records[0]["Legacy Password"] == kept
    assert guard.hashed == 0


def test_the_guard_counts_every_plain_password_it_hashed_across_pages() -> None:
    guard = PasswordGuard(["Legacy Password"], workers=2)
    pages = [[user(f"1x{i}", **{"Legacy Password": f"pw{i}"})] for i in range(3)]
    for page in pages:
        guard(page)
    assert guard.hashed == 3 and guard.seconds > 0
    assert all(is_strong_hash(page[0]["Legacy Password"]) for page in pages)


@pytest.mark.parametrize("cost", range(4, 32))
def test_the_tables_check_pattern_accepts_exactly_the_hashes_the_mapper_keeps(cost: int) -> None:
    # The CHECK constraint's regex is written out by hand: it must agree with is_strong_hash at every cost.
    hashed = f"$2b${cost:02d}$" + "a" * 53
    assert bool(re.match(STRONG_HASH_SQL_PATTERN, hashed)) == is_strong_hash(hashed) == (cost >= BCRYPT_COST)
    assert not re.match(STRONG_HASH_SQL_PATTERN, "hunter2")


def test_a_password_bcrypt_cannot_hash_means_a_reset_not_a_failed_export() -> None:
    records = [
        user("1x1", **{"Legacy Password": "é" * 40}),  # 80 bytes: bcrypt refuses more than 72
        user("1x2", **{"Legacy Password": "broken \ud800 text"}),  # no UTF-8 for a lone surrogate
        user(["1x3"], **{"Legacy Password": "plain", "Modified Date": ["not", "a", "date"]}),  # unhashable keys
    ]
    guard = PasswordGuard(["Legacy Password"], {("1x1", T0): "unused"}, workers=1)
    guard(records)
    assert "Legacy Password" not in records[0] and "Legacy Password" not in records[1]
    assert is_strong_hash(records[2]["Legacy Password"])
    (row,) = map_records(ENTITIES["users"], [records[0]]).rows
    assert row["password_reset_required"] is True
