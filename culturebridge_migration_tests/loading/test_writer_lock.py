"""One writer at a time on a Phase 2 database, across the processes of a run, on a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from culturebridge_migration.loading import writer_lock
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.writer_lock import WriterBusy, writer

pytestmark = pytest.mark.integration


@pytest.fixture
def connect(db: Phase2Database, database_url: str) -> Callable[[], psycopg.Connection]:
    db.conn.commit()  # the schema (and the writer row) exist for every connection
    return lambda: psycopg.connect(database_url, autocommit=True)


def holder(connect: Callable) -> tuple:
    with connect() as conn:
        return conn.execute("SELECT run_id, active_steps, steps_left FROM migration.writer").fetchone()


def test_a_second_run_waits_then_stops_naming_the_run_that_holds_the_database(connect: Callable) -> None:
    with writer(connect, Schemas(), "run-A", "full_migration", steps=3):
        started = time.monotonic()
        with (
            pytest.raises(WriterBusy, match=r"in use by run run-A \(full_migration.*waited 2 s"),
            writer(connect, Schemas(), "run-B", "rollback_migration", wait_seconds=2),
        ):
            pass
        assert time.monotonic() - started >= 2


def test_the_steps_of_one_run_share_the_database_and_the_last_one_lets_go(connect: Callable) -> None:
    with (
        writer(connect, Schemas(), "run-A", "full_migration", steps=2),
        writer(connect, Schemas(), "run-A", "full_migration", steps=2),  # a parallel step of the same run
    ):
        assert holder(connect) == ("run-A", 2, 2)
    assert holder(connect)[2] == 0
    with writer(connect, Schemas(), "run-B", "rollback_migration", wait_seconds=0):  # at once: run-A is over
        assert holder(connect)[0] == "run-B"


def test_between_two_steps_the_run_still_holds_the_database(connect: Callable) -> None:
    with writer(connect, Schemas(), "run-A", "full_migration", steps=2):
        pass  # the first of its two steps is done, the next has not started
    with pytest.raises(WriterBusy), writer(connect, Schemas(), "run-B", "rollback_migration", wait_seconds=1):
        pass


def test_a_waiting_run_goes_ahead_as_soon_as_the_holder_is_done(connect: Callable) -> None:
    entered = threading.Event()

    def first() -> None:
        with writer(connect, Schemas(), "run-A", "full_migration"):
            entered.set()
            time.sleep(1.5)

    thread = threading.Thread(target=first)
    thread.start()
    entered.wait(10)
    waits: list[str] = []
    with writer(
        connect, Schemas(), "run-B", "rollback_migration", wait_seconds=30, on_wait=lambda h: waits.append(h.run_id)
    ):
        assert holder(connect)[0] == "run-B"
    thread.join()
    assert waits and set(waits) == {"run-A"}


def test_a_killed_run_is_let_go_once_no_session_of_its_steps_is_left(
    connect: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_lock, "IDLE_SECONDS", 1.0)
    step = connect()  # a step of run-A, joined and at work; it will never say it ended
    assert writer_lock._try_join(step, Schemas(), "run-A", "full_migration", 5, lambda run_id: False) is None
    time.sleep(1.5)
    with (  # long idle, but a session still holds the steps' lock: alive (a slow step, not a dead one)
        pytest.raises(WriterBusy, match=r"run-A .*a step of it is at work"),
        writer(connect, Schemas(), "run-B", "rollback_migration", wait_seconds=0),
    ):
        pass
    step.close()  # what kill -9 does: the server drops the dead process's session and its lock
    with writer(connect, Schemas(), "run-B", "rollback_migration", wait_seconds=0):
        assert holder(connect)[0] == "run-B"


def test_a_run_known_to_be_over_lets_go_even_when_it_skipped_its_last_steps(connect: Callable) -> None:
    with writer(connect, Schemas(), "run-A", "full_migration", steps=5):
        pass  # a step failed; the four after it were skipped and never said they were done
    with writer(
        connect, Schemas(), "run-B", "full_migration", wait_seconds=0, finished=lambda run_id: run_id == "run-A"
    ):
        assert holder(connect)[0] == "run-B"
