"""The checks' view of an export, gathered while the load streams it: pure, no database."""

from __future__ import annotations

from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.validation.export_digest import ExportDigest


def records(n: int) -> list[dict]:
    return [{"_id": f"x{i}"} for i in range(n)] + [{"Title": "no id"}]


def test_digest_counts_every_record_and_keeps_the_ids_while_passing_records_through() -> None:
    digest = ExportDigest(ENTITIES["posts"], sample_size=10)
    passed = list(digest.watch(records(100)))
    assert passed == records(100)
    assert digest.count == 101
    assert digest.ids == [f"x{i}" for i in range(100)]


def test_sample_is_a_repeatable_draw_from_the_whole_stream() -> None:
    first = ExportDigest(ENTITIES["posts"], sample_size=10, seed=3).consume(records(1000)).sample
    again = ExportDigest(ENTITIES["posts"], sample_size=10, seed=3).consume(records(1000)).sample
    other = ExportDigest(ENTITIES["posts"], sample_size=10, seed=4).consume(records(1000)).sample
    assert first == again != other
    assert len(first) == 10 and len({r.get("_id") for r in first}) == 10
    assert any(int(r["_id"][1:]) >= 500 for r in first if "_id" in r)  # not just the first records


def test_a_stream_shorter_than_the_sample_is_taken_whole() -> None:
    assert ExportDigest(ENTITIES["posts"], sample_size=10).consume(records(3)).sample == records(3)
