"""Bubble's budget is the app's: clients in different processes share its requests in flight and per minute."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from pathlib import Path

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.shared_budget import SharedBudget, budget_folder

KEY = "test-key"
SPAWN = multiprocessing.get_context("spawn")  # a process of its own, as a Dagster step is


def posts(n: int) -> list[dict]:
    stamp = "2025-01-01T00:00:00.000Z"
    return [{"_id": f"170000000000{i}x{i}", "Created Date": stamp, "Modified Date": stamp} for i in range(n)]


def export_posts(url: str, workers: int, per_minute: int | None, go: multiprocessing.synchronize.Barrier) -> None:
    client = BubbleClient(url, KEY, workers=workers, requests_per_minute=per_minute)
    go.wait(60)  # both processes ready: their exports start together
    client.export("post")


def export_in_two_processes(fake: FakeBubble, workers: int, per_minute: int | None = None) -> None:
    go = SPAWN.Barrier(2)
    processes = [SPAWN.Process(target=export_posts, args=(fake.url, workers, per_minute, go)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0


def test_two_processes_together_keep_within_the_apps_requests_in_flight() -> None:
    with FakeBubble({"post": posts(1200)}, api_key=KEY, latency=0.05) as fake:
        export_in_two_processes(fake, workers=2)
        assert len(fake.requests) == 2 * 12
        assert max(r.in_flight for r in fake.requests) == 2  # each client alone would send two


def test_two_processes_share_the_requests_per_minute() -> None:
    with FakeBubble({"post": posts(300)}, api_key=KEY) as fake:
        export_in_two_processes(fake, workers=2, per_minute=600)  # one request every 0.1 s, for both
        arrivals = sorted(r.at for r in fake.requests)
    assert len(arrivals) == 6
    assert all(later - earlier >= 0.08 for earlier, later in itertools.pairwise(arrivals))


def hold_a_slot(folder: Path, ready: multiprocessing.synchronize.Event) -> None:
    with SharedBudget(folder, slots=1, per_minute=None).slot():
        ready.set()
        signal.pause()


def test_a_killed_process_gives_its_slot_back(tmp_path: Path) -> None:
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=hold_a_slot, args=(tmp_path, ready))
    holder.start()
    assert ready.wait(60)
    budget = SharedBudget(tmp_path, slots=1, per_minute=None)
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup of its own: the kernel drops its lock
    holder.join(30)
    with budget.slot():
        pass


def test_threads_of_one_process_exclude_each_other_too(tmp_path: Path) -> None:
    budget = SharedBudget(tmp_path, slots=2, per_minute=None)
    with budget.slot(), budget.slot():
        others = SharedBudget(tmp_path, slots=2, per_minute=None)
        assert others._free_slot() is None  # both taken by this very process
    with others.slot():
        pass


def test_an_app_is_its_host_and_port() -> None:
    live = budget_folder("https://app.bubbleapps.io/api/1.1")
    assert live == budget_folder("https://APP.bubbleapps.io/version-test/api/1.1")
    assert live != budget_folder("https://other.bubbleapps.io/api/1.1")
