"""Through the CLI, as users run it: a table loads while the later types still page, and the verdict
still waits for every table's checks."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration_tests.conftest import DAGSTER

pytestmark = pytest.mark.slow
KEY = "overlap-key"
STEP_BOUNDS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def step_spans(home: Path) -> dict[str, list[float]]:
    """[start, end] of every step of the one run the instance in `home` holds."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        spans: dict[str, list[float]] = {}
        for record in instance.get_records_for_run(run.run_id, of_type=STEP_BOUNDS).records:
            entry = record.event_log_entry
            spans.setdefault(entry.step_key, []).append(entry.timestamp)
    return spans


def test_a_table_loads_while_later_types_page_and_the_verdict_judges_every_check(
    workdir: Path, user_env: Callable
) -> None:
    # Bubble at 0.25 s a request: the bookings, then the payments page for seconds after the users are exported.
    sample = generate_sample(100, bookings=8000, payments=24000)
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    home = workdir / "dagster_home"
    home.mkdir()
    with FakeBubble(data, api_key=KEY, latency=0.25) as server:
        env = user_env(
            BUBBLE_API_URL=server.url, BUBBLE_API_KEY=KEY, BUBBLE_FILES_URL=server.files_url, DAGSTER_HOME=str(home)
        )
        command = [str(DAGSTER), "asset", "materialize", "-m", "culturebridge_migration", "--select", "*"]
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # Every check of every table was judged before the reports: a check not yet run would not be a pass.
    assert done.stderr.strip().splitlines()[-1].startswith("VERDICT: FIT"), done.stderr[-2000:]
    spans = step_spans(home)
    export_end = spans["bubble_export"][1]
    assert spans["phase2_users"][0] < export_end  # the users' table loaded while Bubble still paged
    assert spans["phase2_bookings"][0] < export_end  # and the bookings' while the payments paged
    # The reports read the checks only once every table's step has ended, its checks with it.
    assert spans["report_files"][1] > max(end for step, (_, end) in spans.items() if step.startswith("phase2_"))
