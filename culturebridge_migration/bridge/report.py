"""How the login bridge is going, read from Phase 2: who can log in with their old password, per day, and (once the
window has closed) who must reset theirs. Counts and ids only: never a hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from culturebridge_migration.bridge.window import window_end
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.passwords import HASH_FROM_LOGIN_BRIDGE, HASH_FROM_MIGRATION

USERS = ENTITIES["users"]
ACTIVE = "active"  # users.status of a user who may log in (the field table's Account Status "Active")
# Where an active user's password stands: a hash from the migration, carried by the bridge, set in Phase 2 by
# the app, or still waiting for the user's first login (no hash).
STANDINGS = (HASH_FROM_MIGRATION, HASH_FROM_LOGIN_BRIDGE, "app", "waiting")


@dataclass(frozen=True)
class PasswordReport:
    window_closes_at: datetime | None
    window_open: bool
    active_by_standing: dict[str, int]  # STANDINGS -> active users
    carried_per_day: dict[str, int]  # YYYY-MM-DD -> users whose password the bridge carried that day
    attempts_per_day: dict[str, dict[str, int]]  # YYYY-MM-DD -> outcome -> tries
    resets: list[tuple[int, str, str]]  # once closed: (users.id, e-mail, status) of every user without a hash

    @property
    def active_users(self) -> int:
        return sum(self.active_by_standing.values())

    @property
    def can_log_in(self) -> int:
        """Active users who can log in without a reset now: those with a hash, and while open those waiting."""
        waiting = self.active_by_standing.get("waiting", 0)
        return self.active_users - (0 if self.window_open else waiting)


def password_report(db: Phase2Database, until: datetime | None) -> PasswordReport:
    end = window_end(db, until)
    is_open = end is not None and bool(db.scalar("SELECT clock_timestamp() < %s", (end,)))
    return PasswordReport(end, is_open, _standings(db), _carried(db), _attempts(db), [] if is_open else _resets(db))


def _standings(db: Phase2Database) -> dict[str, int]:
    rows = db.execute(
        sql.SQL(
            "SELECT CASE WHEN password_hash IS NULL THEN 'waiting' ELSE coalesce(password_hash_source, 'app') END,"
            " count(*) FROM {} WHERE status = %s GROUP BY 1"
        ).format(db.table(USERS)),
        (ACTIVE,),
    )
    return {standing: 0 for standing in STANDINGS} | dict(rows)


def _carried(db: Phase2Database) -> dict[str, int]:
    rows = db.execute(
        sql.SQL(
            "SELECT to_char(password_hash_set_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) FROM {}"
            " WHERE password_hash_source = %s GROUP BY 1 ORDER BY 1"
        ).format(db.table(USERS)),
        (HASH_FROM_LOGIN_BRIDGE,),
    )
    return dict(rows)


def _attempts(db: Phase2Database) -> dict[str, dict[str, int]]:
    per_day: dict[str, dict[str, int]] = {}
    for day, outcome, count in db.execute(
        sql.SQL(
            "SELECT to_char(attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), outcome, count(*) FROM {}"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(db.bookkeeping("password_bridge_attempts"))
    ):
        per_day.setdefault(day, {})[outcome] = count
    return per_day


def _resets(db: Phase2Database) -> list[tuple[int, str, str]]:
    return db.execute(
        sql.SQL("SELECT id, email, status FROM {} WHERE password_hash IS NULL ORDER BY id").format(db.table(USERS))
    ).fetchall()
