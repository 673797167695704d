"""The benchmark runs end to end at a tiny scale, both ways and on each kind of server, and writes its
figures. No timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run as bench
from benchmarks.figures import SEED_PER_MINUTE
from benchmarks.harness.debian_postgres import debian_bin_dir

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TINY = [
    "--users",
    "40",
    "--bookings",
    "80",
    "--payments",
    "80",
    "--posts",
    "20",
    "--comments",
    "20",
    "--resources",
    "20",
]
TABLE_STEPS = {"phase2_users", "phase2_bookings", "phase2_payments"}


def run_benchmark(tmp_path: Path, *options: str) -> dict[str, Any]:
    out = tmp_path / "r.json"
    report = bench.main([*TINY, *options, "--out", str(out)])
    assert bench.all_succeeded(report)
    return json.loads(out.read_text())


def assert_migration_figures(migration: dict[str, Any], records: int, via: str) -> None:
    assert migration["via"] == via
    assert migration["success"] is True
    assert migration["failed_steps"] == []
    assert migration["records"] == records
    assert migration["loaded_rows"] > 0
    assert migration["total_seconds"] >= migration["run_seconds"] > 0
    assert migration["records_per_second"] > 0
    for stage in ("export", "load", "reports"):
        assert migration["stages"][stage]["seconds"] > 0, stage
        assert migration["stages"][stage]["records_per_second"] > 0, stage
    assert migration["validation"]["seconds"] > 0
    # The parts come from the assets' own timings: hashing in the export, reading and mapping in the loads.
    assert all(migration["parts"][part] > 0 for part in ("hash", "read", "map", "database")), migration["parts"]
    assert migration["database_rows_per_second"] > 0
    assert migration["entities"]["bookings"]["exported"] > 0
    # Every step's and every table check's seconds, read from the run's event log.
    assert {"bubble_export", "report_files", *TABLE_STEPS} <= set(migration["steps"])
    table_checks = {k: c for k, c in migration["checks"].items() if k.startswith("phase2/")}
    assert "phase2/users:row_counts" in table_checks
    assert all(c["seconds"] is not None and c["seconds"] >= 0 for c in table_checks.values()), table_checks
    assert migration["peak_rss_mb"] > 0


def assert_report(report: dict[str, Any], via: str) -> None:
    assert {"arguments", "machine", "data", "migration", "runs", "hashing", "ceilings", "seed", "peak_rss_mb"} <= set(
        report
    )
    assert report["arguments"]["users"] == 40
    assert report["arguments"]["via"] == via
    assert report["machine"]["cpu_count"] >= 1
    assert report["machine"]["postgres"]
    assert report["data"]["records"] > 0
    for server in report["servers"]:
        assert_migration_figures(server["migration"], report["data"]["records"], via)
        assert server["copy"]["rows_per_second"] > 0
        assert server["copy"]["into_schema"]["foreign_keys"] == 2  # bookings -> users, twice
        assert set(server["seed"]) == set(SEED_PER_MINUTE)
        assert all(s["ours_per_minute"] > 0 for s in server["seed"].values())
    assert report["migration"] == report["servers"][0]["migration"]  # the first server's, at the top level

    assert report["hashing"]["plain_passwords"] > 0
    assert report["hashing"]["hashes_per_second"] > 0

    ceilings = report["ceilings"]
    assert ceilings["copy"]["rows_per_second"] > 0
    assert ceilings["copy"]["ratio"] > 0
    assert ceilings["copy"]["into_schema"]["rows_per_second"] > 0
    assert ceilings["bcrypt"]["single_core_hashes_per_second"] > 0
    assert ceilings["bcrypt"]["ratio"] > 0
    assert ceilings["sequential_export"]["sequential_records_per_second"] > 0
    assert ceilings["sequential_export"]["ratio"] > 0
    assert ceilings["dlt"] is None or "records_per_second" in ceilings["dlt"]  # None: dlt not installed

    assert set(report["seed"]) == set(SEED_PER_MINUTE)
    assert report["peak_rss_mb"]["migration"] > 0
    assert report["peak_rss_mb"]["total"] >= report["peak_rss_mb"]["migration"]
    assert report["data"]["generator_peak_rss_mb"] > 0


def test_in_process_run_writes_its_figures(pg_server_url: str, tmp_path: Path) -> None:
    report = run_benchmark(tmp_path, "--via", "process", "--database-url", pg_server_url)
    assert_report(report, "process")
    assert report["machine"]["database"] == "given server"


def test_cli_run_the_users_path_writes_its_figures(pg_server_url: str, tmp_path: Path) -> None:
    report = run_benchmark(tmp_path, "--via", "cli", "--database-url", pg_server_url)
    assert_report(report, "cli")
    # Under the CLI the steps run in processes of their own: their sum is sampled beside the largest one.
    assert report["peak_rss_mb"]["migration_processes"] > 0


@pytest.mark.skipif(
    debian_bin_dir() is None, reason="Debian's PostgreSQL is not installed (apt-get install postgresql)"
)
def test_same_data_on_the_embedded_and_debian_servers(tmp_path: Path) -> None:
    report = run_benchmark(tmp_path, "--via", "process", "--server", "both")
    assert_report(report, "process")
    embedded, debian = (s["server"] for s in report["servers"])
    assert (embedded["name"], debian["name"]) == ("embedded", "debian")
    assert debian["version"].split(".")[0] == debian_bin_dir().parent.name  # the major Debian installed
    assert [s["name"] for s in report["machine"]["servers"]] == ["embedded", "debian"]
