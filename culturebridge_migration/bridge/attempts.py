"""Every try, audited in `{migration}.password_bridge_attempts`; the limits read the same rows.

In the database, so every service process sharing Phase 2 shares the counts. Never a password in here.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from psycopg import sql

from culturebridge_migration.bridge.config import Limits
from culturebridge_migration.loading.phase2_db import Phase2Database

# Outcomes that count against an account and an address: a guess that failed.
FAILURES = ["wrong_password", "unknown_email", "not_migrated"]
UNKNOWN_SOURCE = "unknown"  # the audit's source of a try whose caller did not say; no per-address limit applies


def record_attempt(
    db: Phase2Database, account: str, user_id: int | None, outcome: str, path: str | None, source: str
) -> None:
    db.execute(
        sql.SQL("INSERT INTO {} (account, user_id, outcome, path, source) VALUES (%s, %s, %s, %s, %s)").format(
            db.bookkeeping("password_bridge_attempts")
        ),
        (account, user_id, outcome, path, source),
    )


def wait_seconds(db: Phase2Database, account: str, source: str | None, limits: Limits) -> int:
    """Seconds before this account may try again from this address (None: unknown); 0: it may try now."""
    by_account = _wait(db, "account", account, limits.account_free, limits, since_success=True)
    if source is None:
        return by_account
    return max(by_account, _wait(db, "source", source, limits.address_free, limits, since_success=False))


def backoff(failures: int, free: int, limits: Limits) -> timedelta:
    """How long after the last failure the next try must wait: nothing within the free tries, then doubling."""
    if failures < free:
        return timedelta(0)
    return min(limits.max_delay, limits.base_delay * 2 ** min(failures - free, 30))


def _wait(db: Phase2Database, column: str, value: str, free: int, limits: Limits, *, since_success: bool) -> int:
    attempts = db.bookkeeping("password_bridge_attempts")
    since = sql.SQL("clock_timestamp() - %(period)s")
    if since_success:  # a success forgives the account's earlier failures
        since = sql.SQL(
            "greatest({since}, (SELECT max(attempted_at) FROM {attempts} WHERE account = %(value)s AND outcome = 'ok'))"
        ).format(since=since, attempts=attempts)
    failures, last, now = db.execute(
        sql.SQL(
            "SELECT count(*), max(attempted_at), clock_timestamp() FROM {attempts} WHERE {column} = %(value)s"
            " AND outcome = ANY(%(failures)s) AND attempted_at > {since}"
        ).format(attempts=attempts, column=sql.Identifier(column), since=since),
        {"value": value, "failures": FAILURES, "period": limits.period},
    ).fetchone()
    if last is None:
        return 0
    return _seconds_left(last + backoff(failures, free, limits), now)


def _seconds_left(until: datetime, now: datetime) -> int:
    return max(0, math.ceil((until - now).total_seconds()))
