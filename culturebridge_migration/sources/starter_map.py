"""A starter field map for an app the field table was not written for: its keys matched to Phase 2 columns.

For each entity the app's type is found (by name or display name), then each column's default Bubble key
is matched to the app's fields in one normal form (`First Name`, `first_name_text` and `FirstName` are
one key), and the map names the key the app's records carry: the display name or the field id, as the
app is set up. What matches the default needs no entry; what matches nothing is listed, so a person
decides (its column stays empty; the app's own unmatched fields are kept in bubble_extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from culturebridge_migration.mapping.entities import BUBBLE_OWN_KEYS, Entity
from culturebridge_migration.mapping.key_matching import normal_form
from culturebridge_migration.mapping.reverse import PHASE2_ID_FIELD
from culturebridge_migration.sources.schema import BubbleField, BubbleSchema, BubbleType


@dataclass
class StarterMap:
    field_map: dict[str, dict[str, str]] = field(default_factory=dict)
    missing_types: list[str] = field(default_factory=list)  # entities whose Bubble type the app lacks
    unmatched_columns: dict[str, list[str]] = field(default_factory=dict)  # entity -> columns no app field matches
    unmatched_fields: dict[str, list[str]] = field(default_factory=dict)  # Bubble type -> fields no column takes
    types: dict[str, str] = field(default_factory=dict)  # entity -> the app's type it was matched to
    matched: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> column -> the app's key it reads
    without_phase2_id: list[str] = field(default_factory=list)  # the app's types the fallback cannot write yet


def starter_field_map(schema: BubbleSchema, entities: Mapping[str, Entity]) -> StarterMap:
    starter = StarterMap()
    for entity in entities.values():
        bubble_type = _find_type(schema, entity)
        if bubble_type is None:
            starter.missing_types.append(entity.name)
            continue
        overrides: dict[str, str] = {} if bubble_type.name == entity.bubble_type else {"_type": bubble_type.name}
        starter.types[entity.name] = bubble_type.name
        matched = starter.matched.setdefault(entity.name, {})
        taken: set[str] = set()
        for spec in entity.fields:
            if "." in spec.source or spec.source in BUBBLE_OWN_KEYS:
                matched[spec.column] = spec.source  # Bubble's own (authentication.email.email): the same in every app
                continue
            match = _find_field(bubble_type, spec.source)
            if match is None:
                starter.unmatched_columns.setdefault(entity.name, []).append(spec.column)
                continue
            key = match.id if schema.keyed_by == "id" else match.display
            matched[spec.column] = key
            taken.add(match.id)
            if key != spec.source:
                overrides[spec.column] = key
        if overrides:
            starter.field_map[entity.name] = overrides
        marker = _find_field(bubble_type, PHASE2_ID_FIELD)  # the fallback's field, not the app's data
        if marker is None:
            starter.without_phase2_id.append(bubble_type.name)
        else:
            taken.add(marker.id)
        left = [f.display for f in bubble_type.fields if f.id not in taken and not f.deleted]
        if left:
            starter.unmatched_fields[bubble_type.name] = left
    return starter


def _find_type(schema: BubbleSchema, entity: Entity) -> BubbleType | None:
    if entity.bubble_type in schema.types:
        return schema.types[entity.bubble_type]
    wanted = {normal_form(entity.bubble_type), normal_form(entity.noun)}
    return next(
        (t for t in schema.types.values() if normal_form(t.name) in wanted or normal_form(t.display) in wanted), None
    )


def _find_field(bubble_type: BubbleType, source: str) -> BubbleField | None:
    wanted = normal_form(source)
    live = [f for f in bubble_type.fields if not f.deleted]
    return next((f for f in live if wanted in (normal_form(f.display), normal_form(f.id))), None)
