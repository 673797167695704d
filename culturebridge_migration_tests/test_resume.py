"""A run killed with kill -9 in the middle of an export resumes at the pages it had not finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.checkpoint import PageCheckpoint
from culturebridge_migration.sources.export_store import read_export
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration_tests.conftest import DAGSTER, start_dagster

pytestmark = pytest.mark.slow
KEY = "resume-key"


def export_bookings(cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return start_dagster(
        cwd, env, "asset", "materialize", "-m", "culturebridge_migration", "--select", "bubble/bookings"
    )


def booking_cursors(server: FakeBubble) -> list[int]:
    return [r.cursor for r in server.requests if r.bubble_type == "booking" and r.status == 200]


def test_export_killed_mid_way_resumes_at_unfinished_pages(workdir: Path, user_env: Callable) -> None:
    tmp_path = workdir  # the embedded server's folder: the CLI runs on its defaults
    sample = generate_sample(100, bookings=4000)
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with FakeBubble(data, api_key=KEY, latency=0.25) as server:
        env = user_env(BUBBLE_API_URL=server.url, BUBBLE_API_KEY=KEY)
        first = export_bookings(tmp_path, env)
        deadline = time.monotonic() + 120
        while len(booking_cursors(server)) < 12 and time.monotonic() < deadline:
            assert first.poll() is None, f"the first run ended before the kill: {first.stderr.read()[-2000:]}"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        partial = PageCheckpoint(tmp_path / "migration_data" / "bookings.partial.jsonl")
        (search,) = {json.loads(line)["search"] for line in partial.path.read_text().splitlines() if line.endswith("}")}
        finished = set(partial.pages(search))
        assert 0 < len(finished) < 40, "the kill should land in the middle of the export"
        server.latency = 0
        server.requests.clear()
        second = export_bookings(tmp_path, env)
        _, stderr = second.communicate(timeout=300)
        assert second.returncode == 0, stderr[-2000:]
        asked_again = set(booking_cursors(server))
        all_pages = set(range(0, len(sample.records["bookings"]), 100))
    assert asked_again == all_pages - finished  # only the pages it had not finished
    exported, _ = read_export(tmp_path / "migration_data", "bookings")
    assert [r["_id"] for r in exported] == [r["_id"] for r in sample.records["bookings"]]
    assert not partial.path.exists()


@pytest.mark.integration
def test_run_killed_mid_load_leaves_no_partial_table_and_the_rerun_completes(
    tmp_path: Path, database_url: str, phase2_env: dict[str, str], user_env: Callable
) -> None:
    import psycopg

    sample = generate_sample(200, bookings=60_000, payments=10, posts=10, comments=10, resources=10)
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    expected_bookings = len(sample.records["bookings"]) - sum(p.entity == "bookings" for p in sample.planted)
    with FakeBubble(data, api_key=KEY) as server:
        env = user_env(BUBBLE_API_URL=server.url, BUBBLE_API_KEY=KEY, BUBBLE_FILES_URL=server.files_url, **phase2_env)
        command = [str(DAGSTER), "asset", "materialize", "-m", "culturebridge_migration", "--select", "*"]
        first = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        caught = False
        with psycopg.connect(database_url, autocommit=True) as watch:
            deadline = time.monotonic() + 240
            while not caught and first.poll() is None and time.monotonic() < deadline:
                caught = bool(
                    watch.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                        " AND (query ILIKE %s OR query ILIKE %s OR query ILIKE %s)",
                        ("COPY stage%client_id%", '%INSERT INTO "public"."bookings"%', '%COPY "public"."bookings"%'),
                    ).fetchone()
                )
                time.sleep(0.01)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            assert caught, "the kill should land while bookings are being loaded"
            time.sleep(0.5)  # the server notices the dead client and aborts its transaction
            assert watch.execute("SELECT count(*) FROM bookings").fetchone()[0] == 0  # nothing half-written
        second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-2000:]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM bookings").fetchone()[0] == expected_bookings
        assert conn.execute("SELECT count(DISTINCT bubble_id) FROM bookings").fetchone()[0] == expected_bookings
