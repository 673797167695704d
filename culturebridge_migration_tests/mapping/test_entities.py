"""The field table: its derived load order, its bounds, and overrides from configuration. Pure."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from culturebridge_migration.mapping.entities import (
    ENTITIES,
    Bounds,
    Entity,
    Field,
    Kind,
    apply_field_overrides,
    load_order,
)
from culturebridge_migration.mapping.mapper import map_records

T0 = "2025-11-05T14:03:22.120Z"


def test_every_entity_loads_after_the_entities_it_references() -> None:
    order = load_order(ENTITIES)
    assert sorted(order) == sorted(ENTITIES)
    for name in order:
        for upstream in ENTITIES[name].upstream:
            assert order.index(upstream) < order.index(name), (upstream, name)


def test_a_new_type_listed_before_what_it_references_still_loads_after_it() -> None:
    reviews = Entity("reviews", "review", "reviews", (Field("booking_id", "Booking", Kind.REF, ref="bookings"),))
    entities = {"reviews": reviews, **ENTITIES}  # first in the table
    order = load_order(entities)
    assert order.index("reviews") > order.index("bookings") > order.index("users")


def test_references_that_form_a_cycle_or_name_no_entity_are_refused() -> None:
    a = Entity("a", "a", "a", (Field("b_id", "B", Kind.REF, ref="b"),))
    b = Entity("b", "b", "b", (Field("a_id", "A", Kind.REF, ref="a"),))
    with pytest.raises(ValueError, match="cycle"):
        load_order({"a": a, "b": b})
    with pytest.raises(ValueError, match="unknown entity 'b'"):
        load_order({"a": a})


def test_bounds_say_the_same_range_to_the_mapper_a_person_and_sql() -> None:
    rate = Bounds(Decimal(25), Decimal(500))
    duration = Bounds(Decimal(0), Decimal(1440), low_exclusive=True)
    assert (Decimal(25) in rate, Decimal(500) in rate, Decimal("500.01") in rate) == (True, True, False)
    assert (0 in duration, 1 in duration) == (False, True)
    assert rate.describe() == ">= 25 and <= 500"
    assert duration.sql("d") == "d > 0 AND d <= 1440"


def test_a_field_table_bound_changes_what_the_mapper_accepts() -> None:
    coaches = ENTITIES["coach_profiles"]
    narrower = dataclasses.replace(
        coaches,
        fields=tuple(
            dataclasses.replace(f, bounds=Bounds(Decimal(30), Decimal(40))) if f.column == "hourly_rate" else f
            for f in coaches.fields
        ),
    )
    record = {"_id": "5x1", "Created Date": T0, "User": "1x1", "Hourly Rate": 50}
    from culturebridge_migration.mapping.mapper import RefLookup

    refs = {"users": RefLookup({"1x1": 1})}
    assert map_records(coaches, [record], refs).rows
    (reject,) = map_records(narrower, [record], refs).rejects
    assert (reject.reason, reject.message) == ("out_of_range", "Hourly Rate 50 must be >= 30 and <= 40")


def test_field_overrides_rename_bubble_keys_and_refuse_typos() -> None:
    entities = apply_field_overrides(ENTITIES, {"users": {"first_name": "first_name_text", "_type": "person"}})
    assert entities["users"].field("first_name").source == "first_name_text"
    assert entities["users"].bubble_type == "person"
    user = {"_id": "1x1", "Created Date": T0, "authentication": {"email": {"email": "a@b.io"}}, "Role": "Client"}
    row = map_records(entities["users"], [{**user, "first_name_text": "Ana"}]).rows[0]
    assert row["first_name"] == "Ana"
    with pytest.raises(ValueError, match="unknown columns"):
        apply_field_overrides(ENTITIES, {"users": {"frist_name": "x"}})
    with pytest.raises(ValueError, match="unknown entity 'people'"):
        apply_field_overrides(ENTITIES, {"people": {}})
