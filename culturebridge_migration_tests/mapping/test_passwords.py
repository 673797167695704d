"""Legacy passwords: hashed before anything touches disk, kept only as strong bcrypt hashes. Pure."""

from __future__ import annotations

import re
import threading
import time

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


def test_pages_hashed_at_once_share_the_guards_workers() -> None:
    # Pages arrive on the export's page threads at once. Each bringing a pool of its own, eight pages hashed
    # on sixteen threads of two cores, and Bubble's pages waited for the CPU.
    guard = PasswordGuard(["Legacy Password"], workers=2)
    pages = [[user(f"{p}x{i}", **{"Legacy Password": f"pw{p}-{i}"}) for i in range(2)] for p in range(8)]
    before, seen, done = set(threading.enumerate()), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            hashing = [
                t for t in threading.enumerate() if t not in before and not t.name.startswith(("page", "sample"))
            ]
            seen[0] = max(seen[0], len(hashing))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, name="sampler")
    workers = [threading.Thread(target=guard, args=(page,), name=f"page-{i}") for i, page in enumerate(pages)]
    sampler.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    guard.close()
    done.set()
    sampler.join()
    assert guard.hashed == 16 and all(is_strong_hash(r["Legacy Password"]) for page in pages for r in page)
    assert 1 <= seen[0] <= 2
    assert not [t for t in threading.enumerate() if t not in before]  # closed: its threads are gone
