"""The field table run in reverse: a Phase 2 row back to Bubble's fields. Pure.

Mapped forward and back, a record in Bubble's own form comes back as it was, field by field; a record
the forward mapping normalised comes back normalised, in the ways `reverse.py`'s docstring lists (each
has an example below), and maps forward again to the same row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culturebridge_migration.mapping.entities import BUILT_IN_KEYS, ENTITIES, Entity, Field, Kind, apply_field_overrides
from culturebridge_migration.mapping.mapper import RefLookup, map_records
from culturebridge_migration.mapping.reverse import PHASE2_ID_FIELD, UnresolvedReference, bubble_fields
from culturebridge_migration.mapping.values import format_bubble_datetime

# Columns the reverse mapping does not give back: Bubble's own fields, and the password's (only a hash).
NOT_WRITTEN = {"bubble_id", "bubble_created_by", "created_at", "updated_at"}


def bubble_ids(refs: Mapping[str, RefLookup]):
    """`bubble_id_of` for the refs a test mapped with: Phase 2 id -> Bubble _id, per entity."""
    inverse = {name: {pid: bid for bid, pid in lookup.ids.items()} for name, lookup in refs.items()}
    return lambda entity, phase2_id: inverse[entity].get(phase2_id)


def forward(entity: Entity, record: dict, refs: Mapping[str, RefLookup]) -> dict:
    batch = map_records(entity, [record], refs)
    assert batch.rejects == [], batch.rejects
    return batch.rows[0]


def round_trip(entity: Entity, record: dict, refs: Mapping[str, RefLookup]) -> dict:
    return bubble_fields(entity, forward(entity, record, refs), bubble_ids(refs))


def written(entity: Entity, row: dict) -> dict:
    passwords = {f.column for f in entity.fields if f.kind is Kind.PASSWORD} | {"password_reset_required"}
    return {k: v for k, v in row.items() if k not in NOT_WRITTEN | passwords and not k.startswith("password_hash")}


def get(record: Mapping[str, object], source: str) -> object:
    node: object = record
    for part in source.split(".") if source.startswith("authentication.") else [source]:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


# -- every record of the sample, and of an app the generator never made -------------------------------
def test_every_sample_record_mapped_back_and_forward_again_gives_the_same_phase2_row(hostile: SimpleNamespace) -> None:
    for name, records in hostile.bases.items():
        entity = ENTITIES[name]
        for record in records:
            row = forward(entity, record, hostile.refs)
            back = bubble_fields(entity, row, bubble_ids(hostile.refs))
            again = forward(entity, {**{k: record[k] for k in BUILT_IN_KEYS if k in record}, **back}, hostile.refs)
            assert written(entity, again) == written(entity, row), (name, record["_id"])


def test_unmapped_fields_go_back_under_their_original_keys(real_app: SimpleNamespace) -> None:
    users, data = ENTITIES["users"], real_app.data
    refs = {"users": RefLookup({u["_id"]: i for i, u in enumerate(data["user"], 1)})}
    ana = round_trip(users, data["user"][0], refs)
    assert (ana["Nickname"], ana["Loyalty Points"], ana["Badges"]) == ("Annie", 40, ["early"])
    assert ana["Home"] == {"address": "Unter den Linden 1, Berlin", "lat": 52.517, "lng": 13.388}
    bo = round_trip(users, data["user"][1], refs)  # a Google sign-up: its id stays beside the e-mail
    assert bo["authentication"] == {
        "Google": {"id": "g-1234"},
        "email": {"email": "bo@gmail.com", "email_confirmed": False},
    }
    assert bo["Slug"] == "bo"


# -- a record in Bubble's own form comes back as it was (property-based) -------------------------------
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
_WORD = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=12)


def _numbers(spec: Field) -> st.SearchStrategy[object]:
    bounds, places = spec.bounds, spec.digits[1]
    low = bounds.low + Decimal(1).scaleb(-places) if bounds.low_exclusive else bounds.low
    decimals = st.decimals(low, bounds.high, places=places, allow_nan=False, allow_infinity=False)
    return decimals.map(lambda d: int(d) if d == d.to_integral_value() else float(d))


def canonical(spec: Field, refs: Mapping[str, RefLookup]) -> st.SearchStrategy[object]:
    """Values of the field as Bubble's Data API writes them, which the forward mapping keeps as they are."""
    kind = spec.kind
    if kind is Kind.ENUM:  # the first display text of each value: the others map onto it
        first: dict[str, str] = {}
        for display, stored in (spec.values or {}).items():
            first.setdefault(stored, display)
        return st.sampled_from(list(first.values()))
    if kind is Kind.REF:
        return st.sampled_from(sorted(refs[spec.ref].ids))
    if kind is Kind.NUMBER:
        return _numbers(spec)
    if kind is Kind.INTEGER:
        return st.integers(int(spec.bounds.low) + spec.bounds.low_exclusive, int(spec.bounds.high))
    strategies = {
        Kind.TEXT: _TEXT.filter(str.strip),
        Kind.EMAIL: st.from_regex(r"[a-z0-9._]{1,12}@[a-z0-9]{1,10}\.[a-z]{2,6}", fullmatch=True),
        Kind.BOOL: st.booleans(),
        Kind.DATE: st.datetimes(timezones=st.just(UTC)).map(format_bubble_datetime),
        Kind.LIST: st.lists(_WORD, max_size=4),
        Kind.JSON: st.dictionaries(_WORD, st.integers() | _WORD | st.booleans() | st.none(), max_size=3).map(
            json.dumps
        ),
        Kind.URL: st.from_regex(r"https://[a-z]{1,10}\.(com|io)(/[a-z0-9_-]{1,10}){0,3}", fullmatch=True),
        Kind.CURRENCY: st.from_regex(r"[A-Z]{3}", fullmatch=True),
    }
    return strategies[kind]


def _put(record: dict, source: str, value: object) -> dict:
    if not source.startswith("authentication."):
        return {**record, source: value}
    auth = json.loads(json.dumps(record.get("authentication") or {}))
    node = auth
    for part in source.split(".")[1:-1]:
        node = node.setdefault(part, {})
    node[source.split(".")[-1]] = value
    return {**record, "authentication": auth}


@given(data=st.data())
def test_a_record_in_bubbles_own_form_comes_back_field_by_field(hostile: SimpleNamespace, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(list(ENTITIES)))
    entity = ENTITIES[name]
    record = dict(data.draw(st.sampled_from(hostile.bases[name])))
    for spec in entity.fields:
        if spec.kind is not Kind.PASSWORD:
            record = _put(record, spec.source, data.draw(canonical(spec, hostile.refs), label=spec.column))
    record.pop("Legacy Password", None)
    extras = data.draw(
        st.dictionaries(
            st.sampled_from(["Nickname", "Room", "Score", "Badges"]), st.integers() | _WORD | st.lists(_WORD)
        )
    )
    back = round_trip(entity, {**record, **extras}, hostile.refs)
    for spec in entity.fields:
        if spec.kind is Kind.PASSWORD:
            continue
        original, returned = get(record, spec.source), get(back, spec.source)
        if spec.kind is Kind.LIST and original == []:
            assert returned is None, spec.column  # an empty list is an absent field, as Bubble serves it
        else:
            assert returned == original, spec.column
    assert {k: back[k] for k in extras} == extras
    assert not set(back) & set(BUILT_IN_KEYS) and "Legacy Password" not in back


# -- what does not come back as Bubble had it (reverse.py's list) ---------------------------------------
LOSSY = [
    ("bookings", "Status", "Requested", "Pending"),  # an option set several texts map to: the first
    ("payments", "Status", "Succeeded", "Paid"),
    ("payments", "Currency", " eur ", "EUR"),
    ("payments", "Amount", 12.345, 12.35),  # rounded to numeric(10,2)
    ("payments", "Amount", "$1,234.50", 1234.5),
    ("bookings", "Session Start", "2025-04-03T11:00:00+02:00", "2025-04-03T09:00:00.000Z"),
    ("bookings", "Session Start", 1_700_000_000_000, "2023-11-14T22:13:20.000Z"),  # epoch milliseconds
    ("posts", "Tags", [" visa ", "", "jobs"], ["visa", "jobs"]),
    ("resources", "File", "//s3.amazonaws.com/appforest_uf/f1/a.pdf", "https://s3.amazonaws.com/appforest_uf/f1/a.pdf"),
    ("client_profiles", "Quiz Answers", '{"b":1,  "a":[2]}', '{"b": 1, "a": [2]}'),
    ("client_profiles", "Onboarding Complete", None, False),  # an empty yes/no was stored as its default
    ("users", "Account Status", None, "Active"),
    ("payments", "Currency", None, "USD"),
    ("bookings", "Notes", "visa\x00 papers", "visa papers"),  # PostgreSQL cannot hold a NUL
]


@pytest.mark.parametrize(("name", "source", "original", "returned"), LOSSY)
def test_what_phase2_normalised_comes_back_normalised(
    hostile: SimpleNamespace, name: str, source: str, original: object, returned: object
) -> None:
    base = dict(hostile.bases[name][0])
    record = {k: v for k, v in base.items() if k != source} if original is None else {**base, source: original}
    assert round_trip(ENTITIES[name], record, hostile.refs)[source] == returned


def test_an_email_comes_back_trimmed_lower_cased_and_under_the_email_sign_up(real_app: SimpleNamespace) -> None:
    users = ENTITIES["users"]
    ana = {
        **real_app.data["user"][0],
        "authentication": {"email": {"email": "  Ana@Example.COM ", "email_confirmed": True}},
    }
    assert round_trip(users, ana, {})["authentication"]["email"] == {
        "email": "ana@example.com",
        "email_confirmed": True,
    }


def test_a_password_never_goes_back(hostile: SimpleNamespace) -> None:
    with_hash = next(u for u in hostile.bases["users"] if "Legacy Password" in u)
    row = forward(ENTITIES["users"], with_hash, hostile.refs)
    assert row["password_hash"] and "Legacy Password" not in bubble_fields(ENTITIES["users"], row, bubble_ids({}))


# -- references, ids, empties, the field map ---------------------------------------------------------
def test_a_reference_goes_back_as_the_referenced_things_bubble_id_and_one_without_raises() -> None:
    row = {"client_id": 1, "coach_id": 2, "status": "confirmed", "duration_minutes": 60, "session_type": None}
    ids = {("users", 1): "1700000000000x1", ("users", 2): "1700000000000x2"}
    fields = bubble_fields(ENTITIES["bookings"], row, lambda entity, pid: ids.get((entity, pid)))
    assert (fields["Client"], fields["Coach"], fields["Status"]) == ("1700000000000x1", "1700000000000x2", "Confirmed")
    with pytest.raises(UnresolvedReference, match=r"bookings\.coach_id points to users 3"):
        bubble_fields(ENTITIES["bookings"], {**row, "coach_id": 3}, lambda entity, pid: ids.get((entity, pid)))


def test_a_rows_phase2_id_goes_into_phase2_id_and_empties_are_left_out_unless_cleared() -> None:
    row = {"id": 42, "title": "Hello", "body": None, "tags": [], "author_id": None}
    assert bubble_fields(ENTITIES["posts"], row, lambda *_: None) == {"Title": "Hello", PHASE2_ID_FIELD: "42"}
    cleared = bubble_fields(ENTITIES["posts"], row, lambda *_: None, clear_empty=True)
    assert cleared == {"Author": None, "Title": "Hello", "Body": None, "Tags": None, PHASE2_ID_FIELD: "42"}


def test_the_field_maps_bubble_keys_are_the_ones_written_and_bubble_extra_may_be_json_text() -> None:
    coaches = apply_field_overrides(ENTITIES, {"coach_profiles": {"hourly_rate": "hourly_rate_number"}})[
        "coach_profiles"
    ]
    row = {
        "user_id": 7,
        "hourly_rate": Decimal("80.00"),
        "rating": Decimal("4.50"),
        "bubble_extra": '{"Intro Video": "//v"}',
    }
    fields = bubble_fields(coaches, row, lambda entity, pid: f"u{pid}")
    assert (fields["hourly_rate_number"], fields["Rating"], fields["User"]) == (80, 4.5, "u7")
    assert fields["Intro Video"] == "//v" and "Hourly Rate" not in fields
