"""The login bridge as a Python function, against a real PostgreSQL and the local Bubble server over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from culturebridge_migration.bridge import login
from culturebridge_migration.bridge.config import Limits
from culturebridge_migration.bridge.login import Outcome, Path
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.passwords import bcrypt_cost, check_password

pytestmark = pytest.mark.integration
CLOSED = datetime(2020, 1, 1, tzinfo=UTC)


def test_the_bubble_password_logs_in_once_through_bubble_then_from_phase2(
    make_bridge: Callable, bubble: FakeBubble, people: SimpleNamespace, rows: Callable
) -> None:
    bridge = make_bridge()
    first = bridge.login(f"  {people.plain_email.upper()} ", people.plain_password, "203.0.113.7")
    assert (first.outcome, first.path) == (Outcome.OK, Path.BUBBLE)
    [(user_id, hashed, source, set_at, reset)] = rows(
        "SELECT id, password_hash, password_hash_source, password_hash_set_at, password_reset_required FROM users"
        f" WHERE bubble_id = '{people.plain_id}'"
    )
    assert first.user_id == user_id
    assert bcrypt_cost(hashed) == 12 and check_password(people.plain_password, hashed)
    assert (source, reset) == ("login_bridge", False) and set_at is not None
    assert len(bubble.login_requests()) == 1
    again = bridge.login(people.plain_email, people.plain_password, "203.0.113.7")
    assert (again.outcome, again.path, again.user_id) == (Outcome.OK, Path.PHASE2, user_id)
    assert len(bubble.login_requests()) == 1  # Bubble was not asked again
    assert rows("SELECT outcome, path, user_id, source FROM migration.password_bridge_attempts ORDER BY id") == [
        ("ok", "bubble", user_id, "203.0.113.7"),
        ("ok", "phase2", user_id, "203.0.113.7"),
    ]


def test_a_user_with_a_migrated_hash_is_checked_against_it_and_bubble_is_not_asked(
    make_bridge: Callable, bubble: FakeBubble, people: SimpleNamespace
) -> None:
    bridge = make_bridge()
    assert bridge.login(people.hashed_email, people.hashed_password).path is Path.PHASE2
    wrong = bridge.login(people.hashed_email, people.hashed_bubble_password)  # Phase 2's hash decides
    assert (wrong.outcome, wrong.http_status) == (Outcome.WRONG_PASSWORD, 401)
    assert bubble.login_requests() == []


def test_a_wrong_password_is_401_and_stores_nothing(
    make_bridge: Callable, bubble: FakeBubble, people: SimpleNamespace, rows: Callable
) -> None:
    result = make_bridge().login(people.plain_email, "not-the-password")
    assert (result.outcome, result.http_status) == (Outcome.WRONG_PASSWORD, 401)
    assert rows(f"SELECT password_hash FROM users WHERE bubble_id = '{people.plain_id}'") == [(None,)]
    assert len(bubble.login_requests()) == 1


def test_an_unknown_email_is_401(make_bridge: Callable) -> None:
    result = make_bridge().login("nobody@example.com", "whatever")
    assert (result.outcome, result.http_status) == (Outcome.UNKNOWN_EMAIL, 401)
    closed = make_bridge(until=CLOSED).login("nobody@example.com", "whatever")
    assert (closed.outcome, closed.http_status) == (Outcome.UNKNOWN_EMAIL, 401)


def test_repeated_wrong_tries_are_refused_with_backoff_per_account_and_per_address(
    make_bridge: Callable, bubble: FakeBubble, people: SimpleNamespace, rows: Callable
) -> None:
    bridge = make_bridge()
    outcomes = [bridge.login(people.plain_email, f"guess-{i}", "198.51.100.1").outcome for i in range(4)]
    assert outcomes == [Outcome.WRONG_PASSWORD] * 3 + [Outcome.TOO_MANY_TRIES]
    # Even the right password waits now, from another address too (the account is locked), and Bubble is spared.
    locked = bridge.login(people.plain_email, people.plain_password, "198.51.100.2")
    assert (locked.outcome, locked.http_status) == (Outcome.TOO_MANY_TRIES, 429)
    assert locked.retry_after and 0 < locked.retry_after <= 30
    assert len(bubble.login_requests()) == 3
    assert rows("SELECT password_hash FROM users WHERE password_hash_source = 'login_bridge'") == []


def test_per_address_limit(make_bridge: Callable, people: SimpleNamespace) -> None:
    bridge = make_bridge(limits=Limits(account_free=10, address_free=2))
    for i in range(2):
        assert bridge.login(f"nobody{i}@example.com", "x", "192.0.2.9").outcome is Outcome.UNKNOWN_EMAIL
    assert bridge.login(people.hashed_email, people.hashed_password, "192.0.2.9").outcome is Outcome.TOO_MANY_TRIES
    assert bridge.login(people.hashed_email, people.hashed_password, "192.0.2.10").ok
    # A caller that does not say where a try comes from gets the per-account limits only, never a shared one.
    for i in range(3):
        assert bridge.login(f"nobody{i}@example.com", "x").outcome is Outcome.UNKNOWN_EMAIL


def test_after_the_window_a_user_without_a_hash_gets_410_and_one_with_a_hash_logs_in(
    make_bridge: Callable, bubble: FakeBubble, people: SimpleNamespace
) -> None:
    bridge = make_bridge(until=CLOSED)
    closed = bridge.login(people.plain_email, people.plain_password)
    assert (closed.outcome, closed.http_status) == (Outcome.WINDOW_CLOSED, 410)
    assert bridge.login(people.hashed_email, people.hashed_password).ok
    assert bubble.login_requests() == []


@pytest.mark.parametrize("fault", ["500", "429", "slow", "drop"])
def test_bubble_down_is_503_never_wrong_password_and_stores_nothing(
    make_bridge: Callable, bubble: FakeBubble, people: SimpleNamespace, rows: Callable, fault: str
) -> None:
    bubble.add_fault(fault, bubble_type="wf/culturebridge_login", **({"seconds": 3} if fault == "slow" else {}))
    result = make_bridge().login(people.plain_email, people.plain_password)
    assert (result.outcome, result.http_status) == (Outcome.BUBBLE_UNAVAILABLE, 503)
    assert rows("SELECT count(*) FROM users WHERE password_hash_source = 'login_bridge'") == [(0,)]


def test_bubble_unreachable_is_503(make_bridge: Callable, people: SimpleNamespace) -> None:
    result = make_bridge(bubble_api_url="http://127.0.0.1:9/api/1.1").login(people.plain_email, people.plain_password)
    assert result.outcome is Outcome.BUBBLE_UNAVAILABLE


def test_the_window_defaults_to_30_days_after_the_last_cutover(make_bridge: Callable, rows: Callable) -> None:
    [(started,)] = rows("SELECT started_at FROM migration.runs WHERE run_id = 'c1'")
    assert (make_bridge().window_end() - started).days == 30


def test_an_unknown_email_takes_about_as_long_as_a_wrong_password(
    make_bridge: Callable, people: SimpleNamespace
) -> None:
    """Both do one bcrypt check (a dummy one for the unknown e-mail); the slower of the two is at most a few times
    the other, on a shared machine (without the dummy check the unknown e-mail takes milliseconds)."""
    bridge = make_bridge(until=CLOSED, limits=Limits(account_free=10, address_free=10))
    bridge.prepare()

    def seconds(email: str) -> float:
        started = time.perf_counter()
        assert not bridge.login(email, "a-wrong-password").ok
        return time.perf_counter() - started

    unknown = min(seconds("nobody@example.com") for _ in range(2))
    wrong = min(seconds(people.hashed_email) for _ in range(2))
    assert unknown > wrong / 3 and wrong > unknown / 3, (unknown, wrong)


def test_a_password_typed_into_the_email_field_never_reaches_the_audit_or_bubble(
    make_bridge: Callable, bubble: FakeBubble, rows: Callable
) -> None:
    result = make_bridge().login("Tr0ub4dor&3 horse", "Tr0ub4dor&3 horse")
    assert result.outcome is Outcome.UNKNOWN_EMAIL
    assert rows("SELECT account FROM migration.password_bridge_attempts") == [("(not an e-mail)",)]
    assert bubble.login_requests() == []


def test_the_python_function_reads_the_migrations_environment(
    phase2: str, bubble: FakeBubble, people: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", phase2)
    monkeypatch.setenv("BUBBLE_API_URL", bubble.url)
    monkeypatch.setenv("BUBBLE_API_KEY", "bridge-test-key")
    result = login(people.plain_email, people.plain_password, source="203.0.113.9")
    assert (result.ok, result.path, result.http_status) == (True, Path.BUBBLE, 200)
    monkeypatch.setenv("BUBBLE_LOGIN_WORKFLOW", "no_such_workflow")  # Bubble's 404: unknown, never "wrong"
    assert login("nobody@example.com", "x").outcome is Outcome.BUBBLE_UNAVAILABLE
    assert login(people.hashed_email, people.hashed_password).path is Path.PHASE2
