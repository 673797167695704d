"""One writer at a time on a Phase 2 database, for a whole run, not just a step.

A migration, a sync, a cutover and a rollback must not interleave: a rollback between two steps of a
migration would leave Phase 2 half at one version and half at the next. A run's steps run in separate
processes, so no session lock spans them; instead the run holds the row of `{migration}.writer`: each of
its steps joins it and counts itself done; when the run's last step is done, the run lets go. A second
run waits a bounded time, then stops with a message naming the run that holds the database.

A killed run leaves its row behind, so the row alone cannot say whether its run is alive. Each step at
work also holds a shared advisory lock in its session, which PostgreSQL drops the moment the step's
process dies: a holder none of whose steps holds the lock, and none of whose steps began or ended for
`IDLE_SECONDS` (longer than Dagster takes to start the next step), is gone, and the next run takes over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from culturebridge_migration.loading.phase2_db import Schemas

IDLE_SECONDS = 20.0  # between two steps of one run, no step holds the lock this long at most


class WriterBusy(RuntimeError):
    """Another run holds the database; the message names it."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    job_name: str
    since: datetime
    idle_seconds: float  # since a step of it last began or ended
    steps_at_work: bool  # a live session holds the steps' lock


Connect = Callable[[], psycopg.Connection]  # a new autocommit connection to Phase 2


def _table(schemas: Schemas) -> sql.Identifier:
    return sql.Identifier(schemas.migration, "writer")


def _lock_key(schemas: Schemas) -> str:
    return f"culturebridge writer {schemas.migration}"  # advisory locks are per database: one key per schema


def _try_join(
    conn: psycopg.Connection, schemas: Schemas, run_id: str, job_name: str, steps: int, finished: Callable[[str], bool]
) -> Holder | None:
    """Join (or take) the database for `run_id` in one short transaction; the other holder, when it is alive.

    The row always exists (`sql/migration.sql` makes it), so `FOR UPDATE` puts two runs starting at once in line.
    """
    table, key = _table(schemas), _lock_key(schemas)
    with conn.transaction():
        row = conn.execute(
            sql.SQL(
                "SELECT run_id, job_name, acquired_at, extract(epoch FROM clock_timestamp() - last_step_at),"
                " NOT pg_try_advisory_xact_lock(hashtext(%s)) FROM {} FOR UPDATE"
            ).format(table),
            (key,),
        ).fetchone()
        holder = Holder(row[0], row[1], row[2], float(row[3]), row[4])
        alive = (holder.steps_at_work or holder.idle_seconds <= IDLE_SECONDS) and not (
            holder.run_id != run_id and finished(holder.run_id)
        )
        if holder.run_id != run_id and alive:
            return holder
        joining = holder.run_id == run_id and alive
        conn.execute(
            sql.SQL(
                "UPDATE {} SET run_id = %(run)s, job_name = %(job)s, last_step_at = clock_timestamp(),"
                " acquired_at = CASE WHEN %(joining)s THEN acquired_at ELSE clock_timestamp() END,"
                " active_steps = CASE WHEN %(joining)s THEN active_steps + 1 ELSE 1 END,"
                " steps_left = CASE WHEN %(joining)s THEN steps_left ELSE %(steps)s END"
            ).format(table),
            {"run": run_id, "job": job_name, "joining": joining, "steps": steps},
        )
        # Held by this session until the step ends or its process dies: the proof that the step is alive.
        conn.execute("SELECT pg_advisory_lock_shared(hashtext(%s))", (key,))
    return None


def _leave(conn: psycopg.Connection, schemas: Schemas, run_id: str, *, run_done: bool) -> None:
    """A step is done; when it was the run's last (or `run_done`), nobody holds the row: the next run takes it."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET active_steps = greatest(active_steps - 1, 0), steps_left = steps_left - 1,"
            " last_step_at = CASE WHEN %(done)s OR steps_left <= 1 THEN 'epoch' ELSE clock_timestamp() END"
            " WHERE run_id = %(run)s"
        ).format(_table(schemas)),
        {"run": run_id, "done": run_done},
    )
    conn.execute("SELECT pg_advisory_unlock_shared(hashtext(%s))", (_lock_key(schemas),))


def _busy(holder: Holder, waited: float) -> WriterBusy:
    state = "a step of it is at work" if holder.steps_at_work else f"between steps for {holder.idle_seconds:.0f} s"
    return WriterBusy(
        f"Phase 2 is in use by run {holder.run_id} ({holder.job_name}, since {holder.since:%Y-%m-%d %H:%M:%S %Z}; "
        f"{state}): waited {waited:.0f} s. Let it finish, then run again (a killed run is let go "
        f"{IDLE_SECONDS:.0f} s after its last step; MIGRATION_WRITER_WAIT_SECONDS sets how long to wait)"
    )


@contextmanager
def writer(
    connect: Connect,
    schemas: Schemas,
    run_id: str,
    job_name: str,
    *,
    steps: int = 1,
    wait_seconds: float = 60.0,
    run_done: bool = False,
    on_wait: Callable[[Holder], None] | None = None,
    finished: Callable[[str], bool] = lambda run_id: False,
) -> Iterator[None]:
    """Hold the database for `run_id` (a run of `steps` steps) while the block runs.

    `run_done`: the run ends with this block whatever steps it planned (a rollback, the readiness gate).
    `finished` tells a run known to be over (a failed run whose later steps were skipped never counts them).
    """
    conn = connect()
    try:
        deadline = time.monotonic() + wait_seconds
        while (holder := _try_join(conn, schemas, run_id, job_name, steps, finished)) is not None:
            if time.monotonic() >= deadline:
                raise _busy(holder, wait_seconds)
            if on_wait is not None:
                on_wait(holder)
            time.sleep(1.0)
        try:
            yield
        finally:
            _leave(conn, schemas, run_id, run_done=run_done)
    finally:
        conn.close()
