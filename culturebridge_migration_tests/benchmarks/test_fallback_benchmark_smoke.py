"""The fallback benchmark runs end to end at a tiny scale (on the embedded PostgreSQL it starts itself).
No timing is asserted."""

from __future__ import annotations

import pytest

from benchmarks import fallback

pytestmark = pytest.mark.slow  # not integration: it brings its own server, so the second CI pass need not run it


def test_the_fallback_benchmark_writes_every_change_with_one_request_each_and_one_bulk_create(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert fallback.main(["--inserts", "5", "--updates", "3", "--deletes", "2", "--latency", "0"]) == 0
    printed = capsys.readouterr().out
    assert "`dagster job execute -j fallback` exit 0" in printed
    assert "bulk create 1, change 3, delete 2" in printed
