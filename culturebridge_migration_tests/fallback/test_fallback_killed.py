"""A fallback killed with kill -9 while Bubble makes its records: the rerun makes none of them twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from culturebridge_migration.defs.jobs import CUTOVER_CONFIG
from culturebridge_migration_tests.conftest import API_KEY, start_dagster
from culturebridge_migration_tests.fallback.test_fallback import app_writes, sample_data, with_phase2_id

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def fallback_cli(cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return start_dagster(cwd, env, "job", "execute", "-m", "culturebridge_migration", "-j", "fallback")


def creates_in_flight(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM migration.fallback_rows WHERE sending").fetchone()[0]


def test_a_fallback_killed_while_bubble_creates_makes_nothing_twice_when_run_again(
    database_url: str,
    tmp_path: Path,
    serve: Callable,
    graph_for: Callable,
    user_env: Callable,
    phase2_env: dict[str, str],
) -> None:
    with serve(sample_data()) as server:
        graph = graph_for(database_url, tmp_path, server)
        assert graph.materialize().success
        assert graph.materialize(run_config=CUTOVER_CONFIG).success
        wrote = app_writes(database_url)
        env = user_env(BUBBLE_API_URL=server.url, BUBBLE_API_KEY=API_KEY, **phase2_env)
        server.add_fault("slow", bubble_type="user", seconds=4)  # the next request of users: the bulk create

        first = fallback_cli(tmp_path, env)
        deadline = time.monotonic() + 120
        while creates_in_flight(database_url) == 0 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        time.sleep(1.5)  # marked as sending, then sent: on a busy machine the request leaves a moment after the mark
        os.killpg(first.pid, signal.SIGKILL)  # the create is on its way: Bubble will make it, nobody will hear
        first.wait()
        made = []
        while not made and time.monotonic() < deadline:  # Bubble holds it 4 s, then makes it
            made = with_phase2_id(server, "user", wrote["user"])
            time.sleep(0.1)
        assert len(made) == 1, "Bubble should have made the user"
        assert creates_in_flight(database_url) == 1  # the mark the crash left: look it up before creating

        second = fallback_cli(tmp_path, env)
        _, errors = second.communicate(timeout=300)
        assert second.returncode == 0, errors[-3000:]
        (user,) = with_phase2_id(server, "user", wrote["user"])
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT bubble_id FROM users WHERE id = %s", (wrote["user"],)).fetchone()[0]
        assert stored == user["_id"]
        assert len(with_phase2_id(server, "booking", wrote["booking"])) == 1
