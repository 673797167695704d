"""Bubble's editor CSV export: written as the editor does, read back as the Data API would serve it."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.values import parse_datetime
from culturebridge_migration.sources.bubble_csv import (
    find_export_file,
    read_csv_export,
    unavailable_fields,
    write_csv_export,
)
from culturebridge_migration.sources.sample_data import generate_sample


@pytest.fixture(scope="module")
def sample():
    return generate_sample(60)


def _minute(text: str) -> str:
    return parse_datetime(text).replace(second=0, microsecond=0).isoformat()


def test_round_trip_keeps_every_field_the_format_can_hold(sample, tmp_path: Path) -> None:
    write_csv_export(sample.records, tmp_path, tz="America/New_York")
    for name, entity in ENTITIES.items():
        back = {r["_id"]: r for r in read_csv_export(tmp_path, entity, tz="America/New_York")}
        assert set(back) == {r["_id"] for r in sample.records[name]}, name
        for original in sample.records[name]:
            got = back[original["_id"]]
            for spec in entity.fields:
                key = spec.source
                value = (
                    original.get(key)
                    if "." not in key
                    else original.get("authentication", {}).get("email", {}).get("email")
                )
                if spec.source in unavailable_fields(entity):
                    assert key not in got  # not in Bubble's CSV export (email_confirmed, user_signed_up)
                elif value is None:
                    assert key not in got or spec.column == "email", (name, key)
                elif spec.kind.value == "date" and got[key] != value:
                    assert _minute(got[key]) == _minute(value)
                else:
                    assert got[key] == value, (name, key)
            assert _minute(got["Created Date"]) == _minute(original["Created Date"])


def test_local_times_become_utc_across_daylight_saving(tmp_path: Path) -> None:
    (tmp_path / "export_All-Posts_2025-11-05_14-03-22.csv").write_text(
        '"unique id","Creation Date","Modified Date","Creator","Slug","Author","Title","Body","Tags"\n'
        '"1x1","Jul 5, 2025 2:03 pm","Nov 5, 2025 2:03 pm","(App admin)","","9x9","Hi","Line one\nline, two ""quoted""","a , b"\n'
    )
    (record,) = read_csv_export(tmp_path, ENTITIES["posts"], tz="America/New_York")
    assert record["Created Date"] == "2025-07-05T18:03:00.000Z"  # EDT, UTC-4
    assert record["Modified Date"] == "2025-11-05T19:03:00.000Z"  # EST, UTC-5
    assert record["Body"] == 'Line one\nline, two "quoted"'
    assert record["Tags"] == ["a", "b"]
    assert record["Created By"] == "(App admin)"


def test_unparseable_values_stay_text_for_the_mapper_to_reject(tmp_path: Path) -> None:
    (tmp_path / "export_All-Bookings_2025-11-05_14-03-22.csv").write_text(
        '"unique id","Creation Date","Session Start","Duration Minutes","Status"\n'
        '"2x1","Nov 5, 2025 2:03 pm","next tuesday","sixty","Done"\n'
    )
    (record,) = read_csv_export(tmp_path, ENTITIES["bookings"])
    assert (record["Session Start"], record["Duration Minutes"]) == ("next tuesday", "sixty")


def test_missing_file_says_what_to_export(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"export_All-Users_\*\.csv.*unique ids"):
        read_csv_export(tmp_path, ENTITIES["users"])


def test_file_without_unique_ids_is_refused(tmp_path: Path) -> None:
    (tmp_path / "export_All-Users_2025-11-05_14-03-22.csv").write_text('"email","Role"\n"a@b.co","Client"\n')
    with pytest.raises(ValueError, match="unique id"):
        read_csv_export(tmp_path, ENTITIES["users"])


def test_newest_export_is_read(tmp_path: Path) -> None:
    for stamp in ("2025-11-05_14-03-22", "2025-11-06_09-00-00"):
        (tmp_path / f"export_All-Users_{stamp}.csv").write_text('"unique id"\n"x"\n')
    assert find_export_file(tmp_path, ENTITIES["users"]).name == "export_All-Users_2025-11-06_09-00-00.csv"


def test_columns_no_field_maps_are_kept_as_text(tmp_path: Path) -> None:
    (tmp_path / "export_All-Posts_2025-11-05_14-03-22.csv").write_text(
        '"unique id","Creation Date","Title","Mood","Slug"\n"1x1","Nov 5, 2025 2:03 pm","Hi","cheerful",""\n'
    )
    (record,) = read_csv_export(tmp_path, ENTITIES["posts"])
    assert record["Mood"] == "cheerful" and "Slug" not in record  # an empty cell is an absent field, as in the API


def test_a_column_named_twice_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "export_All-Posts_2025-11-05_14-03-22.csv").write_text(
        '"unique id","Title","Body","Title"\n"1x1","Hi","x","Hello"\n'
    )
    with pytest.raises(
        ValueError, match=r"export_All-Posts_2025-11-05_14-03-22\.csv names the column 'Title' more than once"
    ):
        read_csv_export(tmp_path, ENTITIES["posts"])


def test_a_file_that_is_not_utf8_is_refused_naming_file_byte_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "export_All-Posts_2025-11-05_14-03-22.csv"
    path.write_bytes('"unique id","Title"\n"1x1","Café"\n'.encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"export_All-Posts.*is not utf-8-sig text \(byte 0xe9 at offset 30\).*BUBBLE_CSV_ENCODING"
    ):
        read_csv_export(tmp_path, ENTITIES["posts"])
    (record,) = read_csv_export(tmp_path, ENTITIES["posts"], encoding="latin-1")
    assert record["Title"] == "Café"


def test_a_cell_longer_than_pythons_csv_field_limit_reaches_the_mapper_as_text(tmp_path: Path) -> None:
    long_body = "x" * 1_000_000  # the csv module refuses fields past 131,072 characters by default
    (tmp_path / "export_All-Posts_2025-11-05_14-03-22.csv").write_text(
        f'"unique id","Creation Date","Title","Body"\n"5x1","Nov 5, 2025 2:03 pm","T","{long_body}"\n'
        '"5x\x002","Nov 5, 2025 2:03 pm","NUL in the id",""\n'
    )
    records = read_csv_export(tmp_path, ENTITIES["posts"])
    assert [len(r.get("Body", "")) for r in records] == [1_000_000, 0] and records[1]["_id"] == "5x\x002"
