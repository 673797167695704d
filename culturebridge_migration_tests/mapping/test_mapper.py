"""Every mapping rule and reject kind, without Dagster or a database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from culturebridge_migration.mapping.entities import ENTITIES, apply_field_overrides
from culturebridge_migration.mapping.mapper import RefLookup, map_records
from culturebridge_migration.mapping.values import parse_datetime

T0 = "2025-11-05T14:03:22.120Z"


def user(bubble_id: str = "1x1", email: str = "ana@example.com", created: str = T0, **fields: object) -> dict:
    return {
        "_id": bubble_id,
        "Created Date": created,
        "Modified Date": created,
        "authentication": {"email": {"email": email, "email_confirmed": True}},
        "Role": "Client",
        **fields,
    }


def booking(**fields: object) -> dict:
    record = {
        "_id": "2x1",
        "Created Date": T0,
        "Modified Date": T0,
        "Client": "1x1",
        "Coach": "1x2",
        "Session Start": "2025-12-01T10:00:00.000Z",
        "Duration Minutes": 60,
        "Status": "Accepted",
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


USERS = RefLookup({"1x1": 11, "1x2": 12}, {"1x9": "invalid_email"})


def only_reject(entity: str, record: dict, refs: dict | None = None):
    batch = map_records(ENTITIES[entity], [record], refs)
    assert batch.rows == []
    assert len(batch.rejects) == 1
    return batch.rejects[0]


@pytest.mark.parametrize(
    ("bubble", "stored"), [("Client", "client"), ("Coach", "coach"), ("Admin", "admin"), (" coach ", "coach")]
)
def test_role_maps_to_lower_case_value(bubble: str, stored: str) -> None:
    assert map_records(ENTITIES["users"], [user(Role=bubble)]).rows[0]["role"] == stored


@pytest.mark.parametrize(
    ("bubble", "stored"),
    [("Active", "active"), ("Inactive", "inactive"), ("Suspended", "suspended"), ("Pending Verification", "pending")],
)
def test_account_status_maps(bubble: str, stored: str) -> None:
    assert map_records(ENTITIES["users"], [user(**{"Account Status": bubble})]).rows[0]["status"] == stored


@pytest.mark.parametrize(
    ("bubble", "stored"),
    [
        ("Pending", "pending"),
        ("Requested", "pending"),
        ("Confirmed", "confirmed"),
        ("Accepted", "confirmed"),
        ("Completed", "completed"),
        ("Done", "completed"),
        ("Cancelled", "cancelled"),
        ("Canceled", "cancelled"),
        ("Declined", "cancelled"),
    ],
)
def test_booking_status_maps(bubble: str, stored: str) -> None:
    row = map_records(ENTITIES["bookings"], [booking(Status=bubble)], {"users": USERS}).rows[0]
    assert row["status"] == stored
    assert (row["client_id"], row["coach_id"]) == (11, 12)


@pytest.mark.parametrize(
    ("bubble", "stored"),
    [
        ("Pending", "pending"),
        ("Paid", "succeeded"),
        ("Succeeded", "succeeded"),
        ("Failed", "failed"),
        ("Refunded", "refunded"),
    ],
)
def test_payment_status_maps(bubble: str, stored: str) -> None:
    record = {"_id": "3x1", "Created Date": T0, "Booking": "2x1", "Amount": 80, "Status": bubble}
    row = map_records(ENTITIES["payments"], [record], {"bookings": RefLookup({"2x1": 5})}).rows[0]
    assert (row["status"], row["amount"], row["currency"], row["booking_id"]) == (stored, Decimal(80), "USD", 5)


def test_email_is_trimmed_and_lower_cased() -> None:
    assert (
        map_records(ENTITIES["users"], [user(email="  Ana.Lima@Example.COM ")]).rows[0]["email"]
        == "ana.lima@example.com"
    )


def test_duplicate_email_keeps_the_earlier_user_and_rejects_the_later() -> None:
    later = user("1x2", "ANA@example.com ", created="2025-11-06T00:00:00.000Z")
    earlier = user("1x1", "ana@example.com", created="2025-11-01T00:00:00.000Z")
    batch = map_records(ENTITIES["users"], [later, earlier])
    assert [r["bubble_id"] for r in batch.rows] == ["1x1"]
    (reject,) = batch.rejects
    assert (reject.bubble_id, reject.reason, reject.column) == ("1x2", "duplicate_email", "email")
    assert "1x1" in reject.message


def test_email_taken_in_phase2_by_another_record_is_rejected() -> None:
    batch = map_records(ENTITIES["users"], [user("1x5")], taken_emails={"ana@example.com": "1x1"})
    assert batch.rejects[0].reason == "duplicate_email"


@pytest.mark.parametrize("created", [1e400, float("nan"), 10**20])
def test_a_created_date_out_of_range_is_a_reject_not_a_crash(created: float) -> None:
    batch = map_records(ENTITIES["bookings"], [booking(**{"Created Date": created})], {"users": USERS})
    assert not batch.rows
    assert [(r.reason, r.column) for r in batch.rejects] == [("unparseable_date", "created_at")]


def test_lists_json_and_protocol_relative_urls_map() -> None:
    profile = {
        "_id": "4x1",
        "Created Date": T0,
        "User": "1x1",
        "Quiz Answers": '{"q1": "yes", "score": 3}',
        "Goals": ["Find work", "Learn German"],
        "Preferred Languages": "English , German",
    }
    row = map_records(ENTITIES["client_profiles"], [profile], {"users": USERS}).rows[0]
    assert row["quiz_answers"] == {"q1": "yes", "score": 3}
    assert row["goals"] == ["Find work", "Learn German"]
    assert row["preferred_languages"] == ["English", "German"]
    assert row["onboarding_complete"] is False
    photo = map_records(ENTITIES["users"], [user(**{"Profile Photo": "//s3.amazonaws.com/a.jpg"})]).rows[0]
    assert photo["profile_photo_url"] == "https://s3.amazonaws.com/a.jpg"


@pytest.mark.parametrize(
    ("entity", "record", "reason", "column"),
    [
        ("users", user(email=""), "missing_required", "email"),
        ("users", user(email="not-an-email"), "invalid_email", "email"),
        ("users", user(Role="Mentor"), "unknown_enum", "role"),
        ("bookings", booking(**{"Session Start": None}), "missing_required", "session_start"),
        ("bookings", booking(**{"Session Start": "next tuesday"}), "unparseable_date", "session_start"),
        ("bookings", booking(**{"Duration Minutes": 0}), "out_of_range", "duration_minutes"),
        ("bookings", booking(**{"Duration Minutes": "sixty"}), "unparseable_number", "duration_minutes"),
        ("bookings", booking(Status="Rescheduled"), "unknown_enum", "status"),
        ("bookings", booking(Client="1x404"), "missing_reference", "client_id"),
        ("bookings", booking(Client="1x9"), "rejected_reference", "client_id"),
        ("users", user(**{"Created Date": "yesterday-ish"}), "unparseable_date", "created_at"),
    ],
)
def test_bad_records_become_rejects_with_reason(entity: str, record: dict, reason: str, column: str) -> None:
    reject = only_reject(entity, record, {"users": USERS})
    assert (reject.reason, reject.column, reject.entity) == (reason, column, entity)
    assert reject.message


def test_out_of_range_numbers_and_bad_json_are_rejected() -> None:
    coach = {"_id": "5x1", "Created Date": T0, "User": "1x2", "Hourly Rate": 900}
    assert only_reject("coach_profiles", coach, {"users": USERS}).reason == "out_of_range"
    coach["Hourly Rate"] = "fifty"
    assert only_reject("coach_profiles", coach, {"users": USERS}).reason == "unparseable_number"
    profile = {"_id": "4x1", "Created Date": T0, "User": "1x1", "Quiz Answers": "{not json"}
    assert only_reject("client_profiles", profile, {"users": USERS}).reason == "invalid_json"
    payment = {"_id": "3x1", "Created Date": T0, "Booking": "2x1", "Amount": -5, "Status": "Paid"}
    assert only_reject("payments", payment, {"bookings": RefLookup({"2x1": 1})}).reason == "out_of_range"


def test_rejected_reference_names_the_upstream_reason() -> None:
    reject = only_reject("bookings", booking(Coach="1x9"), {"users": USERS})
    assert "rejected (invalid_email)" in reject.message


def test_optional_reference_may_be_empty_but_not_dangling() -> None:
    resource = {"_id": "6x1", "Created Date": T0, "Title": "Visa guide", "Resource Type": "Guide"}
    assert map_records(ENTITIES["resources"], [resource], {"users": USERS}).rows[0]["uploaded_by"] is None
    resource["Uploaded By"] = "1x404"
    assert only_reject("resources", resource, {"users": USERS}).reason == "missing_reference"


def test_plain_text_reaching_the_mapper_is_rejected_and_masked() -> None:
    reject = only_reject("users", user(**{"Legacy Password": "hunter2"}))
    assert reject.value == "***" and "hunter2" not in reject.message


def test_every_record_is_a_row_or_a_reject() -> None:
    records = [
        user("1x1"),
        user("1x2", "bad"),
        user("1x3", "c@example.com", Role="Mentor"),
        user("1x4", "d@example.com"),
    ]
    batch = map_records(ENTITIES["users"], records)
    assert len(batch.rows) + len(batch.rejects) == len(records)
    assert {r["bubble_id"] for r in batch.rows} | {r.bubble_id for r in batch.rejects} == {"1x1", "1x2", "1x3", "1x4"}


def test_dates_are_stored_as_utc_from_iso_and_csv_formats() -> None:
    row = map_records(
        ENTITIES["bookings"], [booking(**{"Session Start": "2025-12-01T11:00:00+01:00"})], {"users": USERS}
    ).rows[0]
    assert row["session_start"] == datetime(2025, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_datetime("Nov 5, 2025 2:03 pm", "America/New_York") == datetime(2025, 11, 5, 19, 3, tzinfo=UTC)
    assert parse_datetime("Jul 5, 2025 2:03 pm", "America/New_York") == datetime(2025, 7, 5, 18, 3, tzinfo=UTC)


# -- real Bubble quirks, one record at a time --------------------------------------------------------
def test_a_nul_in_text_is_removed_and_the_change_recorded() -> None:
    batch = map_records(ENTITIES["bookings"], [booking(Notes="call me\x00 maybe")], {"users": USERS})
    (row,) = batch.rows
    assert row["notes"] == "call me maybe"
    (fix,) = batch.fixes
    assert (fix.bubble_id, fix.field, fix.column) == ("2x1", "Notes", "notes")
    assert fix.original == "call me\\x00 maybe" and fix.stored == "call me maybe"
    assert "NUL" in fix.reason and fix.decided_by == "migration"


def test_nuls_in_list_items_and_json_text_are_removed_too() -> None:
    profile = {
        "_id": "4x1",
        "Created Date": T0,
        "User": "1x1",
        "Goals": ["Find\x00 work"],
        "Quiz Answers": '{"q": "ye\\u0000s"}',
    }
    batch = map_records(ENTITIES["client_profiles"], [profile], {"users": USERS})
    (row,) = batch.rows
    assert row["goals"] == ["Find work"] and row["quiz_answers"] == {"q": "yes"}
    assert {f.column for f in batch.fixes} == {"goals", "quiz_answers"}


def test_a_lone_surrogate_is_a_reject_naming_it() -> None:
    reject = only_reject("bookings", booking(Notes="broken \ud800 text"), {"users": USERS})
    assert (reject.reason, reject.column) == ("invalid_value", "notes")
    assert "surrogate" in reject.message and reject.value == "broken \\ud800 text"


@pytest.mark.parametrize(
    ("bubble_id", "reason"),
    [
        (["1x1", "1x2"], "invalid_value"),
        (42, "invalid_value"),
        ("1x\x001", "invalid_value"),
        ("1x\n1", "invalid_value"),  # a control character: no Bubble id holds one
        ("1x" + "9" * 200, "invalid_value"),  # far longer than any id Bubble makes
        (None, "missing_required"),
        ("  ", "missing_required"),
    ],
)
def test_a_record_whose_id_is_not_usable_text_is_a_reject(bubble_id: object, reason: str) -> None:
    record = {k: v for k, v in booking().items() if k != "_id"}
    if bubble_id is not None:
        record["_id"] = bubble_id
    reject = only_reject("bookings", record, {"users": USERS})
    assert (reject.reason, reject.column) == (reason, "bubble_id")


def test_a_record_without_created_date_is_a_reject() -> None:
    record = {k: v for k, v in booking().items() if k != "Created Date"}
    reject = only_reject("bookings", record, {"users": USERS})
    assert (reject.reason, reject.column) == ("missing_required", "created_at")


def test_nan_inside_json_text_is_invalid_json() -> None:
    profile = {"_id": "4x1", "Created Date": T0, "User": "1x1", "Quiz Answers": '{"score": NaN}'}
    reject = only_reject("client_profiles", profile, {"users": USERS})
    assert reject.reason == "invalid_json" and "NaN" in reject.message


def test_a_date_that_overflows_once_in_utc_is_a_reject() -> None:
    reject = only_reject("bookings", booking(**{"Session Start": "9999-12-31T23:00:00-02:00"}), {"users": USERS})
    assert (reject.reason, reject.column) == ("unparseable_date", "session_start")


def test_amounts_are_checked_as_the_column_stores_them() -> None:
    refs = {"bookings": RefLookup({"2x1": 5})}
    payment = {"_id": "3x1", "Created Date": T0, "Booking": "2x1", "Status": "Paid"}
    reject = only_reject("payments", {**payment, "Amount": 0.004}, refs)
    assert reject.reason == "out_of_range" and "stored as 0.00" in reject.message
    (row,) = map_records(ENTITIES["payments"], [{**payment, "Amount": 12.345}], refs).rows
    assert row["amount"] == Decimal("12.35")  # rounded half away from zero, as PostgreSQL's numeric does


def test_an_object_or_list_in_a_text_field_is_kept_as_json_not_pythons_repr() -> None:
    (row,) = map_records(ENTITIES["users"], [user(Phone={"number": "+49 1"}, Timezone=["Europe/Berlin"])]).rows
    assert row["phone"] == '{"number": "+49 1"}' and row["timezone"] == '["Europe/Berlin"]'


@pytest.mark.parametrize("provider", ["Google", "Facebook", "LinkedIn", "Apple"])
def test_a_user_who_signed_up_with_a_provider_is_migrated_with_that_email(provider: str) -> None:
    record = {**user(), "authentication": {provider: {"email": " Ana@Example.com", "id": "g-123"}}}
    (row,) = map_records(ENTITIES["users"], [record]).rows
    assert row["email"] == "ana@example.com"
    assert row["bubble_extra"] == {"authentication": {provider: {"id": "g-123"}}}  # nothing of it is lost


def test_a_user_with_no_email_anywhere_is_a_reject_saying_where_it_looked() -> None:
    record = {**user(), "authentication": {}}
    reject = only_reject("users", record)
    assert reject.reason == "missing_required" and "authentication.*.email" in reject.message


def test_fields_no_column_maps_are_kept_verbatim_in_bubble_extra() -> None:
    address = {"address": "Unter den Linden 1, Berlin", "lat": 52.517, "lng": 13.388}
    record = user(
        Nickname="Ana", **{"Loyalty Points": 40, "Badges": ["early", "mentor"], "Home": address, "Slug": "ana"}
    )
    record["user_signed_up"] = True
    (row,) = map_records(ENTITIES["users"], [record]).rows
    assert row["bubble_extra"] == {
        "Nickname": "Ana",
        "Loyalty Points": 40,
        "Badges": ["early", "mentor"],
        "Home": address,
        "Slug": "ana",
    }
    assert row["signed_up"] is True


def test_a_record_with_nothing_unmapped_has_no_bubble_extra_and_keeps_its_creator() -> None:
    (row,) = map_records(ENTITIES["users"], [user(**{"Created By": "admin_user_culturebridge"})]).rows
    assert row["bubble_extra"] is None
    assert row["bubble_created_by"] == "admin_user_culturebridge"


def test_keys_the_field_map_ignores_are_neither_kept_nor_reported() -> None:
    entities = apply_field_overrides(ENTITIES, {"users": {"_ignore": ["Old Avatar - deleted"]}})
    (row,) = map_records(entities["users"], [user(**{"Old Avatar - deleted": "//x/y.png", "Nickname": "A"})]).rows
    assert row["bubble_extra"] == {"Nickname": "A"}


def deep(levels: int) -> list:
    """A list nested `levels` deep, built without recursion."""
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


PROFILE = {"_id": "4x1", "Created Date": T0, "User": "1x1"}


def test_a_json_text_nested_ten_thousand_deep_is_a_reject_naming_the_field_and_the_limit() -> None:
    reject = only_reject("client_profiles", {**PROFILE, "Quiz Answers": "[" * 10_000 + "]" * 10_000}, {"users": USERS})
    assert (reject.reason, reject.field, reject.column) == ("nested_too_deep", "Quiz Answers", "quiz_answers")
    assert "64" in reject.message


def test_json_text_at_the_depth_limit_still_loads() -> None:
    (row,) = map_records(
        ENTITIES["client_profiles"], [{**PROFILE, "Quiz Answers": "[" * 64 + "]" * 64}], {"users": USERS}
    ).rows
    assert row["quiz_answers"] == deep(63)


@pytest.mark.parametrize(
    ("key", "column"),
    [
        ("Quiz Answers", "quiz_answers"),
        ("Goals", "goals"),
        ("Current Country", "current_country"),
        ("Pets", "bubble_extra"),
    ],
)
def test_a_decoded_value_nested_too_deep_in_any_key_is_a_reject_naming_it(key: str, column: str) -> None:
    reject = only_reject("client_profiles", {**PROFILE, key: deep(10_000)}, {"users": USERS})
    assert (reject.reason, reject.field, reject.column) == ("nested_too_deep", key, column)
    assert "64" in reject.message


@pytest.mark.parametrize("key", ["_id", "Created Date", "Modified Date", "Created By"])
def test_a_built_in_key_nested_ten_thousand_deep_is_a_reject_not_a_crash(key: str) -> None:
    reject = only_reject("client_profiles", {**PROFILE, key: deep(10_000)}, {"users": USERS})
    assert reject.reason in ("invalid_value", "nested_too_deep", "unparseable_date")


def test_a_first_name_of_five_megabytes_is_a_reject_naming_the_limit() -> None:
    reject = only_reject("users", user(**{"First Name": "A" * 5_000_000}))
    assert (reject.reason, reject.column) == ("too_long", "first_name")
    assert "200" in reject.message and "5,000,000" in reject.message and len(reject.value or "") <= 200


def test_a_post_body_may_be_long_but_not_endless() -> None:
    post = {"_id": "5x1", "Created Date": T0, "Author": "1x1", "Title": "Essay"}
    refs = {"users": USERS}
    assert map_records(ENTITIES["posts"], [{**post, "Body": "word " * 20_000}], refs).rows
    reject = only_reject("posts", {**post, "Body": "x" * 100_001}, refs)
    assert (reject.reason, reject.column) == ("too_long", "body") and "100,000" in reject.message


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "ftp://x.io/a"],
)
def test_a_link_that_is_not_http_is_a_reject(link: str) -> None:
    resource = {"_id": "6x1", "Created Date": T0, "Title": "Guide", "URL": link}
    reject = only_reject("resources", resource)
    assert (reject.reason, reject.column) == ("invalid_value", "url") and "web link" in reject.message


def test_a_protocol_relative_link_is_stored_as_https() -> None:
    resource = {"_id": "6x1", "Created Date": T0, "Title": "Guide", "URL": "//s3.amazonaws.com/appforest_uf/f1/a.pdf"}
    (row,) = map_records(ENTITIES["resources"], [resource]).rows
    assert row["url"] == "https://s3.amazonaws.com/appforest_uf/f1/a.pdf"


def test_a_list_of_text_is_limited_by_its_items_together() -> None:
    resource = {"_id": "6x1", "Created Date": T0, "Title": "Guide"}
    (row,) = map_records(ENTITIES["resources"], [{**resource, "Tags": ["x" * 5_000, "y" * 5_000]}]).rows
    assert len(row["tags"]) == 2
    reject = only_reject("resources", {**resource, "Tags": ["tag"] * 1_000_000})
    assert (reject.reason, reject.column) == ("too_long", "tags") and "items together" in reject.message


def test_the_fallbacks_phase2_id_is_not_kept_as_the_apps_data() -> None:
    """A record the fallback wrote carries its Phase 2 id: the row's own id, not a field of the app's to keep."""
    (row,) = map_records(ENTITIES["users"], [user(phase2_id="42")]).rows
    assert row["bubble_extra"] is None
