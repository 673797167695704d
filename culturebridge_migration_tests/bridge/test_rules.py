"""The bridge's pure rules: what a login does, what Bubble's answer means, the backoff, the window's setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from culturebridge_migration.bridge.attempts import backoff
from culturebridge_migration.bridge.bubble_login import Verdict, read_answer
from culturebridge_migration.bridge.config import Limits, parse_until
from culturebridge_migration.bridge.login import Account, Step, decide
from culturebridge_migration.validation.password_checks import LoginReadiness, check_login_share


def test_the_decision() -> None:
    hashed, bare = Account(1, "$2b$12$x"), Account(2, None)
    assert [decide(hashed, True), decide(hashed, False)] == [Step.CHECK_HASH, Step.CHECK_HASH]
    assert [decide(bare, True), decide(bare, False)] == [Step.ASK_BUBBLE, Step.CLOSED]
    assert [decide(None, True), decide(None, False)] == [Step.ASK_BUBBLE, Step.NO_SUCH_USER]


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, {"status": "success", "response": {"token": "t", "user_id": "1x2", "expires": 1}}, Verdict.VERIFIED),
        (200, {"status": "success", "response": {}}, Verdict.UNKNOWN),  # a workflow without "Log the user in"
        (400, {"statusCode": 400, "body": {"status": "NOT_VALID"}}, Verdict.REFUSED),
        (401, {"statusCode": 401}, Verdict.UNKNOWN),  # our key, not the user's password
        (404, {"statusCode": 404}, Verdict.UNKNOWN),  # no such workflow
        (429, None, Verdict.UNKNOWN),
        (500, None, Verdict.UNKNOWN),
        (503, None, Verdict.UNKNOWN),
    ],
)
def test_what_bubbles_answer_means(status: int, body: object, verdict: Verdict) -> None:
    answer = read_answer(status, body)
    assert answer.verdict is verdict
    assert (answer.user_id == "1x2") is (verdict is Verdict.VERIFIED)


def test_the_backoff_doubles_past_the_free_tries_up_to_a_cap() -> None:
    limits = Limits(account_free=3, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=15))
    waits = [backoff(n, 3, limits).total_seconds() for n in range(2, 10)]
    assert waits == [0, 30, 60, 120, 240, 480, 900, 900]


def test_the_window_setting() -> None:
    assert parse_until("2026-01-31") == datetime(2026, 2, 1, tzinfo=UTC)  # through that day
    assert parse_until("2026-01-31T18:00:00") == datetime(2026, 1, 31, 18, tzinfo=UTC)
    assert parse_until("2026-01-31T18:00:00+01:00") == datetime(2026, 1, 31, 17, tzinfo=UTC)
    assert parse_until("2026-01-31T18:00:00Z") == datetime(2026, 1, 31, 18, tzinfo=UTC)
    with pytest.raises(ValueError, match="MIGRATION_PASSWORD_BRIDGE_UNTIL"):
        parse_until("next month")


def test_the_share_of_active_users_who_can_log_in() -> None:
    assert check_login_share(LoginReadiness(10, 9)).passed
    failed = check_login_share(LoginReadiness(10, 8))
    assert (failed.passed, failed.offending, failed.details["share"]) == (False, 2, 0.8)
    assert check_login_share(LoginReadiness(0, 0)).passed  # nobody active: nobody is locked out
