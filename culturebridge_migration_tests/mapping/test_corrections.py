"""The team's corrections, read from a filled-in errors CSV or JSON and applied before mapping. Pure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturebridge_migration.mapping.corrections import CORRECTED, MAPPED, FixesFileError, read_fixes_file
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.mapper import map_records

BOOKINGS, USERS = ENTITIES["bookings"], ENTITIES["users"]
HEADER = "entity,bubble_id,field,column,value,reason,message,created_at,fix\n"


def booking(bubble_id: str, status: str) -> dict:
    return {
        "_id": bubble_id,
        "Created Date": "2025-11-05T14:03:22.120Z",
        "Session Start": "2025-12-01T10:00:00Z",
        "Duration Minutes": 60,
        "Status": status,
    }


def test_a_filled_in_fix_column_corrects_that_field_of_that_record_and_says_who_decided(tmp_path: Path) -> None:
    path = tmp_path / "errors_fixed.csv"
    path.write_text(HEADER + "bookings,b1,Status,status,Reschedlued,unknown_enum,not a status,,pending\n")
    decisions = read_fixes_file(path).for_entity(BOOKINGS)
    record, fixes = decisions.apply(booking("b1", "Reschedlued"))
    assert record["Status"] == "pending"
    (fix,) = fixes
    assert (fix.original, fix.stored, fix.reason, fix.decided_by) == (
        "Reschedlued",
        "pending",
        CORRECTED,
        "fixes file errors_fixed.csv",
    )
    assert decisions.not_applied(whole_export=True) == []


def test_rows_without_a_fix_are_not_decisions_and_the_export_record_is_left_as_bubble_sent_it(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    path.write_text(
        HEADER + "bookings,b1,Status,status,X,unknown_enum,m,,\nbookings,b2,Status,status,Y,unknown_enum,m,,done\n"
    )
    decisions = read_fixes_file(path).for_entity(BOOKINGS)
    original = booking("b2", "Y")
    fixed, _ = decisions.apply(original)
    assert original["Status"] == "Y" and fixed["Status"] == "done"
    assert decisions.apply(booking("b1", "X")) == (booking("b1", "X"), [])


def test_a_value_map_turns_every_such_value_into_one_the_mapper_accepts(tmp_path: Path) -> None:
    path = tmp_path / "fixes.json"
    path.write_text(json.dumps({"value_maps": {"bookings": {"status": {"Rescheduled": "pending"}}}}))
    decisions = read_fixes_file(path).for_entity(BOOKINGS)
    records = [decisions.apply(booking(f"b{i}", "Rescheduled"))[0] for i in range(3)]
    batch = map_records(BOOKINGS, records, {"users": _no_refs()})
    assert {r.reason for r in batch.rejects} <= {"missing_required"}  # the client and coach are left out here
    assert decisions.apply(booking("b9", "Rescheduled"), remember=False)[1][0].reason == MAPPED
    assert decisions.mapped == {("Status", "Rescheduled"): 3}


def test_a_correction_whose_record_holds_another_value_now_is_reported_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    path.write_text(HEADER + "bookings,b1,Status,status,Reschedlued,unknown_enum,m,,pending\n")
    decisions = read_fixes_file(path).for_entity(BOOKINGS)
    record, fixes = decisions.apply(booking("b1", "cancelled"))  # someone fixed it in Bubble meanwhile
    assert record["Status"] == "cancelled" and fixes == []
    ((subject, why),) = decisions.not_applied(whole_export=False)
    assert subject == "b1" and "Bubble holds 'cancelled' now, not 'Reschedlued'" in why


def test_decisions_for_records_a_whole_export_lacks_and_values_no_record_holds_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "fixes.json"
    path.write_text(
        json.dumps(
            {
                "value_maps": {"bookings": {"status": {"Tentative": "pending"}}},
                "corrections": [{"entity": "bookings", "bubble_id": "gone", "field": "Status", "value": "pending"}],
            }
        )
    )
    decisions = read_fixes_file(path).for_entity(BOOKINGS)
    decisions.apply(booking("b1", "confirmed"))
    assert decisions.not_applied(whole_export=False) == []  # an incremental export holds only the changes
    subjects = [subject for subject, _ in decisions.not_applied(whole_export=True)]
    assert subjects == ["gone", "Status=Tentative"]


def test_a_nested_field_is_corrected_where_the_mapper_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    email = next(f.source for f in USERS.fields if f.column == "email")
    path.write_text(HEADER + f"users,u1,{email},email,ana@,invalid_email,m,,ana@example.com\n")
    user = {
        "_id": "u1",
        "Created Date": "2025-11-05T14:03:22.120Z",
        "Role": "Client",
        "authentication": {"email": {"email": "ana@"}},
    }
    fixed, _ = read_fixes_file(path).for_entity(USERS).apply(user)
    (row,) = map_records(USERS, [fixed], {}).rows
    assert row["email"] == "ana@example.com"


def test_a_cell_the_errors_csv_showed_as_text_reads_back_as_the_value(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    path.write_text(HEADER + "bookings,b1,Status,status,'=cmd,unknown_enum,m,,pending\n")
    decisions = read_fixes_file(path).for_entity(BOOKINGS)
    assert decisions.apply(booking("b1", "=cmd"))[0]["Status"] == "pending"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("plain.csv", "entity,bubble_id\nbookings,b1\n", "not an errors CSV with a `fix` column"),
        ("broken.json", "{", "Expected"),
        ("maps.json", json.dumps({"value_maps": {"bookings": {"state": {"a": "b"}}}}), "has no column state"),
    ],
)
def test_a_fixes_file_that_cannot_be_used_is_refused_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FixesFileError, match=message):
        read_fixes_file(path).for_entity(BOOKINGS)


def _no_refs():
    from culturebridge_migration.mapping.mapper import RefLookup

    return RefLookup({}, {})
