"""Every type and field the Bubble app has, and which of them the field table maps.

Bubble describes an app's exposed data at `/api/1.1/meta`: `get` lists the types, `types` gives each
type's fields with their id, display name and kind. When an app hides it ("Hide Swagger API
documentation access", a 404) or serves something that does not parse, the fields are learned from
the records exported instead; the schema says which of the two it is. A record's key is a field's
display name or its id, depending on the app's "Use field display instead of ID for key names".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from culturebridge_migration.mapping.entities import Entity

DELETED_SUFFIX = " - deleted"


@dataclass(frozen=True)
class BubbleField:
    id: str
    display: str
    kind: str = ""  # text, number, date, boolean, user, custom.<type>, option.<set>, list.<...>; "" when unknown

    @property
    def deleted(self) -> bool:
        return self.display.endswith(DELETED_SUFFIX)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys a record may carry this field under: its display name, or its id."""
        return tuple(dict.fromkeys((self.display, self.id)))


@dataclass(frozen=True)
class BubbleType:
    name: str
    display: str
    fields: tuple[BubbleField, ...] = ()


@dataclass(frozen=True)
class BubbleSchema:
    source: str  # "meta" (Bubble's /meta) or "records" (learned from the exported records)
    types: dict[str, BubbleType] = field(default_factory=dict)
    note: str = ""  # why it was learned from the records, when it was
    keyed_by: str = "display"  # what records' keys are: fields' "display" names or their "id"s

    def field_keys(self, bubble_type: str) -> frozenset[str]:
        """Every key a record of the type may carry its fields under (both display names and ids)."""
        found = self.types.get(bubble_type)
        return frozenset(key for f in found.fields for key in f.keys) if found else frozenset()

    def as_json(self) -> dict:
        return asdict(self)


class MalformedMeta(ValueError):
    """Bubble's /meta answered, but not with the document the Data API describes."""


def parse_meta(document: object) -> BubbleSchema:
    """Bubble's /meta document -> the schema of the types it exposes to the Data API."""
    if not isinstance(document, Mapping) or not isinstance(document.get("types", {}), Mapping):
        raise MalformedMeta("it is not an object with 'get' and 'types'")
    exposed = document.get("get")
    if not isinstance(exposed, list) or not all(isinstance(t, str) for t in exposed):
        raise MalformedMeta("its 'get' is not a list of type names")
    described = document.get("types") or {}
    types = {}
    for name in exposed:
        entry = described.get(name) or {}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("fields", []), list):
            raise MalformedMeta(f"type {name!r} is not described with a list of fields")
        fields = tuple(_field(name, raw) for raw in entry.get("fields", []))
        types[name] = BubbleType(name, str(entry.get("display") or name), fields)
    app = document.get("app_data") if isinstance(document.get("app_data"), Mapping) else {}
    keyed_by = "display" if app.get("use_captions_for_get", True) else "id"  # "Use field display ... for key names"
    return BubbleSchema("meta", types, keyed_by=keyed_by)


def _field(bubble_type: str, raw: object) -> BubbleField:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise MalformedMeta(f"a field of type {bubble_type!r} has no id")
    return BubbleField(raw["id"], str(raw.get("display") or raw["id"]), str(raw.get("type") or ""))


def from_records(keys_by_type: Mapping[str, Mapping[str, int]], note: str) -> BubbleSchema:
    """What the exported records show: every key each type's records carry (its id and display alike)."""
    types = {
        name: BubbleType(name, name, tuple(BubbleField(key, key) for key in sorted(keys) if not key.startswith("_")))
        for name, keys in keys_by_type.items()
    }
    return BubbleSchema("records", types, note)


def app_schema(
    document: object | None,
    note: str,
    record_keys: Callable[[], Mapping[str, Mapping[str, int]]],
    learned_from: str,
) -> BubbleSchema:
    """The app's schema from its /meta `document`; with none (`note` says why) or one that does not read,
    from `record_keys()`, the keys each type's records carry, which `learned_from` names in the note."""
    if document is not None:
        try:
            return parse_meta(document)
        except MalformedMeta as exc:
            note = f"Bubble's /meta could not be read ({exc})"
    return from_records(record_keys(), f"{note}; fields learned from {learned_from}")


# -- what the field table makes of it --------------------------------------------------------------
def coverage_of(schema: BubbleSchema, entities: Mapping[str, Entity]) -> dict[str, dict]:
    """Per Bubble type: the entity that migrates it (or none), and each field: mapped, ignored or unmapped."""
    by_type = {e.bubble_type: e for e in entities.values()}
    report = {}
    for name, bubble_type in schema.types.items():
        entity = by_type.get(name)
        fields = {
            f.display: {"id": f.id, "kind": f.kind, "state": _state(entity, f), "deleted": f.deleted}
            for f in bubble_type.fields
        }
        report[name] = {"display": bubble_type.display, "entity": entity.name if entity else None, "fields": fields}
    return report


def _state(entity: Entity | None, bubble_field: BubbleField) -> str:
    if entity is None:
        return "kept verbatim (type not migrated)"
    if any(key in entity.ignored for key in bubble_field.keys):
        return "ignored"
    if any(key in {f.source for f in entity.fields} for key in bubble_field.keys):
        return "mapped"
    return "unmapped (kept in bubble_extra)"
