"""Phase 2 rows -> Bubble fields: the field table run in reverse, for writing the app's changes back to Bubble.

Pure, like the mapper, and driven by the same table (`entities.py`, field map overrides included): each
column goes back under its Bubble key, in Bubble's form. Option sets become their display text, money
and numbers JSON numbers, dates Bubble's `2025-11-05T14:03:22.120Z`, lists JSON arrays, JSON columns the
text Bubble holds, references the referenced thing's Bubble `_id` (through `bubble_id_of`, since a row
holds Phase 2 ids), and what the row kept in `bubble_extra` goes back under its original keys. The row's
Phase 2 id goes into `phase2_id`, so a create can be found again after a crash (Bubble's create is not
idempotent). Bubble's own fields (`_id`, the dates, `Created By`) are never written: Bubble sets them.
A user's e-mail (`authentication.email.email`) and `user_signed_up` go back under the keys the export read
them from; whether Bubble's Data API lets a write set them is not documented (the job that writes users
must find out on the real app, or create users another way).

What the forward mapping normalised cannot come back as Bubble had it (a write back stores the Phase 2
value, in Bubble's form):
- an option set several display texts map to comes back as the first the table lists (`Requested` ->
  `Pending`, `Paid` -> `Paid`, `Succeeded` -> `Paid`);
- an e-mail comes back trimmed and lower-cased, under `authentication.email.email` even for a user who
  signed up with Google (the provider is not a column);
- list items come back trimmed, blank items dropped; a link `//host/...` comes back `https://host/...`;
  a currency upper-cased; a number rounded to its column's scale; a date in UTC with milliseconds;
- a JSON text comes back as the same JSON, written again (its spacing, escapes and key order may differ);
- an empty field that has a default comes back as that default (`Account Status` Active, `Currency`
  USD, yes/no false): Phase 2 stored the default;
- a NUL character the migration removed stays removed;
- a password never goes back: Phase 2 holds only its bcrypt hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from culturebridge_migration.mapping.entities import PHASE2_ID_FIELD, Entity, Field, Kind
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime

# Bubble's own nested object: a dotted key under it is a path (authentication.email.email); any other
# dotted key is one key, as an app's display name may hold a dot ("No. of sessions").
_NESTED_ROOTS = frozenset({"authentication"})

BubbleIdOf = Callable[[str, int], str | None]  # (entity name, Phase 2 id) -> the Bubble _id, None when it has none


class UnresolvedReference(ValueError):
    """A reference to a Phase 2 row that has no Bubble id yet: that row must be written to Bubble first."""

    def __init__(self, entity: str, column: str, target: str, phase2_id: object) -> None:
        super().__init__(
            f"{entity}.{column} points to {target} {phase2_id}, which has no Bubble id yet: write it first"
        )
        self.entity, self.column, self.target, self.phase2_id = entity, column, target, phase2_id


def bubble_fields(
    entity: Entity, row: Mapping[str, object], bubble_id_of: BubbleIdOf, *, clear_empty: bool = False
) -> dict[str, object]:
    """The Bubble fields of one Phase 2 row (a dict of column -> value, as read from PostgreSQL).

    An empty column is left out, as Bubble leaves an empty field out; `clear_empty` sends it as null
    instead, so that a PATCH clears it in Bubble. Raises UnresolvedReference for a reference Bubble
    cannot hold yet.
    """
    fields: dict[str, object] = {}
    for spec in entity.fields:
        if spec.kind is Kind.PASSWORD:
            continue
        value = _to_bubble(entity, spec, row.get(spec.column), bubble_id_of)
        if value is not None or clear_empty:
            _put(fields, spec.source, value)
    _merge_missing(fields, _extra(row.get("bubble_extra")))
    if row.get("id") is not None:
        fields[PHASE2_ID_FIELD] = str(row["id"])
    return fields


def _to_bubble(entity: Entity, spec: Field, value: object, bubble_id_of: BubbleIdOf) -> object:
    """One column's value as Bubble holds it; None for empty."""
    if value is None or (spec.kind is Kind.LIST and not value):
        return None
    if spec.kind is Kind.REF:
        bubble_id = bubble_id_of(spec.ref or "", int(value))  # type: ignore[arg-type]
        if bubble_id is None:
            raise UnresolvedReference(entity.name, spec.column, spec.ref or "", value)
        return bubble_id
    if spec.kind is Kind.ENUM:
        return _display_text(spec, str(value))
    return _CONVERTERS.get(spec.kind, str)(value)


def _display_text(spec: Field, stored: str) -> str:
    """The first display text the field table maps to `stored`."""
    for display, value in (spec.values or {}).items():
        if value == stored:
            return display
    raise ValueError(f"{spec.column} {stored!r} is none of the option set's values {list(spec.stored_values)}")


def _number(value: object) -> int | float:
    """A JSON number: whole numbers as integers (80.00 -> 80), others as the float nearest the decimal."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _date(value: object) -> str:
    return format_bubble_datetime(value if isinstance(value, datetime) else parse_datetime(value))


def _json_text(value: object) -> str:
    """Bubble keeps JSON in a text field; a jsonb column read back is the JSON value itself."""
    return value if isinstance(value, str) else json.dumps(value)


_CONVERTERS: dict[Kind, Callable[[object], object]] = {
    Kind.BOOL: bool,
    Kind.NUMBER: _number,
    Kind.INTEGER: int,  # type: ignore[dict-item]
    Kind.DATE: _date,
    Kind.LIST: list,  # type: ignore[dict-item]
    Kind.JSON: _json_text,
}


def _put(fields: dict[str, object], source: str, value: object) -> None:
    parts = source.split(".")
    if len(parts) == 1 or parts[0] not in _NESTED_ROOTS:
        fields[source] = value
        return
    node = fields
    for part in parts[:-1]:
        node = node.setdefault(part, {})  # type: ignore[assignment]
    node[parts[-1]] = value


def _extra(value: object) -> dict[str, object]:
    """`bubble_extra` as psycopg reads jsonb (a dict), or as JSON text."""
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, Mapping) else {}


def _merge_missing(fields: dict[str, object], extra: Mapping[str, object]) -> None:
    """Add `extra`'s keys (nested as Bubble sent them) where the mapped fields did not put a value."""
    for key, value in extra.items():
        present = fields.get(key)
        if isinstance(present, dict) and isinstance(value, Mapping):
            _merge_missing(present, value)
        elif key not in fields:
            fields[key] = value
