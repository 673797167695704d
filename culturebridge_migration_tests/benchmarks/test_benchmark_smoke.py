"""The benchmark runs end to end at a tiny scale and writes its figures. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import run as bench

TINY = ["--users", "40", "--bookings", "80", "--payments", "80", "--posts", "20", "--comments", "20"]


def test_benchmark_completes_and_writes_its_figures(pg_server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    bench.main([*TINY, "--resources", "20", "--database-url", pg_server_url, "--out", str(out)])

    report = json.loads(out.read_text())
    assert {"arguments", "machine", "data", "migration", "runs", "hashing", "ceilings", "seed", "peak_rss_mb"} <= set(
        report
    )
    assert report["arguments"]["users"] == 40
    assert report["machine"]["cpu_count"] >= 1
    assert report["data"]["records"] > 0

    migration = report["migration"]
    assert migration["success"] is True
    assert migration["records"] == report["data"]["records"]
    assert migration["loaded_rows"] > 0
    assert migration["total_seconds"] > 0
    assert migration["records_per_second"] > 0
    for stage in ("export", "load", "reports"):
        assert migration["stages"][stage]["seconds"] > 0, stage
        assert migration["stages"][stage]["records_per_second"] > 0, stage
    assert migration["validation"]["seconds"] > 0
    # The parts come from the assets' own timings: hashing in the export, reading and mapping in the loads.
    assert all(migration["parts"][part] > 0 for part in ("hash", "read", "map", "database")), migration["parts"]
    assert migration["database_rows_per_second"] > 0
    assert migration["entities"]["bookings"]["exported"] > 0

    assert report["hashing"]["plain_passwords"] > 0
    assert report["hashing"]["hashes_per_second"] > 0

    ceilings = report["ceilings"]
    assert ceilings["copy"]["rows_per_second"] > 0
    assert ceilings["copy"]["ratio"] > 0
    assert ceilings["copy"]["into_schema"]["rows_per_second"] > 0
    assert ceilings["copy"]["into_schema"]["foreign_keys"] == 2  # bookings -> users, twice
    assert ceilings["bcrypt"]["single_core_hashes_per_second"] > 0
    assert ceilings["bcrypt"]["ratio"] > 0
    assert ceilings["sequential_export"]["sequential_records_per_second"] > 0
    assert ceilings["sequential_export"]["ratio"] > 0
    assert ceilings["dlt"] is None or "records_per_second" in ceilings["dlt"]  # None: dlt not installed

    assert set(report["seed"]) == set(bench.SEED_PER_MINUTE)
    assert all(s["ours_per_minute"] > 0 for s in report["seed"].values())
    assert report["peak_rss_mb"]["migration"] > 0
    assert report["peak_rss_mb"]["total"] >= report["peak_rss_mb"]["migration"]
    assert report["data"]["generator_peak_rss_mb"] > 0
