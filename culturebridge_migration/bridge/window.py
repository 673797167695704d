"""When the bridge closes: MIGRATION_PASSWORD_BRIDGE_UNTIL, else 30 days after the last cutover run."""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from culturebridge_migration.bridge.config import DEFAULT_WINDOW
from culturebridge_migration.loading.phase2_db import Phase2Database


def window_end(db: Phase2Database, until: datetime | None) -> datetime | None:
    """The end of the window: `until` when set; else DEFAULT_WINDOW after the last cutover run (or, before any,
    the last migration run), rehearsals and rolled-back runs aside. None: nothing was ever migrated."""
    if until is not None:
        return until
    last = db.scalar(
        sql.SQL(
            "SELECT coalesce(max(started_at) FILTER (WHERE job_name = 'cutover'), max(started_at)) FROM {}"
            " WHERE NOT rehearsal AND rolled_back_at IS NULL"
        ).format(db.bookkeeping("runs"))
    )
    return None if last is None else last + DEFAULT_WINDOW  # type: ignore[operator]
