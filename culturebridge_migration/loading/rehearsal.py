"""A rehearsal (dry run): everything a table step would do, undone, and what it would have done kept.

The load, the deletion sweep and the checks run inside one transaction that is always rolled back, so
the checks see Phase 2 as cutover would leave it and Phase 2 ends as it was. What the load would have
done (its counts, rejects and value fixes) is then written to the bookkeeping under the run, marked a
rehearsal and rolled back: the reports read it like any run's, while later runs, the rollback and the
deletion census pass over it as they pass over a rolled-back run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from psycopg import sql

from culturebridge_migration.loading import bookkeeping
from culturebridge_migration.loading.migrate import EntityOutcome
from culturebridge_migration.loading.phase2_db import Phase2Database


@contextmanager
def rehearsal(db: Phase2Database, run_id: str) -> Iterator[None]:
    """Everything the block writes is undone when it ends, however it ends."""
    with db.conn.transaction(force_rollback=True):
        # A table rehearsed before in this run left the run marked rolled back: within the block it is
        # live, so this table's checks see the run's own counts as they will at cutover.
        db.execute(
            sql.SQL("UPDATE {} SET rolled_back_at = NULL WHERE run_id = %s").format(db.bookkeeping("runs")), (run_id,)
        )
        yield


def keep_rehearsal(db: Phase2Database, outcome: EntityOutcome, run_id: str, job_name: str, started: datetime) -> None:
    """What the rehearsed load would have done, in the bookkeeping, under a run that changed nothing."""
    entity = db.entities[outcome.entity]
    with bookkeeping.entity_load(db, run_id, job_name, rehearsal=True):
        bookkeeping.record_load(db, run_id, entity, outcome.record(), started_at=started)
