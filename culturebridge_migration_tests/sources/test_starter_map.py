"""A starter field map for an app named otherwise: its keys matched to the field table's columns. Pure."""

from __future__ import annotations

from culturebridge_migration.fake_bubble.meta import id_keyed
from culturebridge_migration.fake_bubble.sample import sample_field_kinds
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration.sources.schema import BubbleField, BubbleSchema, BubbleType, parse_meta
from culturebridge_migration.sources.starter_map import starter_field_map


def sample_meta(**options: object) -> tuple[dict, dict]:
    data = {ENTITIES[n].bubble_type: r for n, r in generate_sample(20).records.items()}
    return id_keyed(data, field_kinds=sample_field_kinds(), **options)


def test_an_app_keyed_by_display_names_as_designed_needs_no_map() -> None:
    from culturebridge_migration.fake_bubble.meta import infer_meta

    data = {ENTITIES[n].bubble_type: r for n, r in generate_sample(20).records.items()}
    starter = starter_field_map(parse_meta(infer_meta(data, field_kinds=sample_field_kinds())), ENTITIES)
    assert starter.field_map == {} and not starter.unmatched_columns and not starter.missing_types


def test_an_app_keyed_by_field_ids_maps_every_column_to_its_id() -> None:
    _, meta = sample_meta()
    starter = starter_field_map(parse_meta(meta), ENTITIES)
    assert starter.field_map["users"]["first_name"] == "first_name_text"
    assert starter.field_map["users"]["role"] == "role_option_os_role"
    assert starter.field_map["bookings"]["client_id"] == "client_user"
    assert starter.field_map["coach_profiles"]["expertise"] == "expertise_list_text"
    assert starter.field_map["payments"]["booking_id"] == "booking_custom_booking"
    assert not starter.unmatched_columns


def test_a_type_named_otherwise_is_found_by_its_display_name_and_the_rest_is_listed() -> None:
    person = BubbleType(
        "person",
        "User",
        (BubbleField("first_name_text", "First Name", "text"), BubbleField("mood_text", "Mood", "text")),
    )
    starter = starter_field_map(BubbleSchema("meta", {"person": person}), {"users": ENTITIES["users"]})
    assert starter.field_map == {"users": {"_type": "person"}}  # the display names match the defaults
    assert "role" in starter.unmatched_columns["users"]
    assert starter.unmatched_fields == {"person": ["Mood"]}


def test_a_type_without_the_fallbacks_phase2_id_field_is_named_and_one_with_it_is_not_data() -> None:
    fields = (BubbleField("first_name_text", "First Name", "text"),)
    without = BubbleType("user", "User", fields)
    marked = BubbleType("booking", "Booking", (BubbleField("phase2_id_text", "phase2_id", "text"),))
    entities = {"users": ENTITIES["users"], "bookings": ENTITIES["bookings"]}
    starter = starter_field_map(BubbleSchema("meta", {"user": without, "booking": marked}), entities)
    assert starter.without_phase2_id == ["user"]
    assert "booking" not in starter.unmatched_fields  # the fallback's field is not kept as the app's data
