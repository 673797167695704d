"""Bubble's `/meta` document: inferred from a data set, or given whole.

Shape (as Bubble serves it at `/api/1.1/meta`, trimmed to what a Data API client reads):

    {"get": ["user", "booking", ...],            # the types exposed to the Data API
     "post": [],                                  # Workflow API endpoints: none here
     "types": {"booking": {"display": "Booking",
                           "fields": [{"id": "client_user", "display": "Client", "type": "user"}, ...]}},
     "app_data": {"appname": ..., "app_version": "live" | "test", "use_captions_for_get": true}}

`use_captions_for_get` is the "Use field display instead of ID for key names" setting: records are keyed
by a field's `display` when it is on and by its `id` when it is off. Field ids carry the type the way
Bubble makes them: `first_name_text`, `role_option_os_role`, `client_user`, `expertise_list_text`,
`booking_custom_booking`. Built-in keys are not fields. A field whose display ends in ` - deleted` was
deleted in the editor and may still hold data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from culturebridge_migration.fake_bubble.files import is_bubble_file_url

BUILTIN_KEYS = frozenset({"_id", "Created Date", "Modified Date", "Created By", "Slug"})
USER_BUILTIN_KEYS = frozenset({"authentication", "user_signed_up"})
DELETED_SUFFIX = " - deleted"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".bmp", ".heic")

Data = Mapping[str, Iterable[dict]]
FieldKinds = Mapping[str, Mapping[str, str]]  # type -> record key -> kind, for what values cannot tell


def builtin_keys(bubble_type: str) -> frozenset[str]:
    return BUILTIN_KEYS | USER_BUILTIN_KEYS if bubble_type == "user" else BUILTIN_KEYS


def is_iso_date(value: object) -> bool:
    return isinstance(value, str) and bool(_ISO_DATE.match(value))


def field_id(display: str, kind: str) -> str:
    """The id Bubble gives a field: its display name in snake case, then its type (`hourly_rate_number`)."""
    base = display.removesuffix(DELETED_SUFFIX)
    words = re.sub(r"[^0-9a-z]+", "_", base.lower()).strip("_")
    return f"{words}_{kind.replace('.', '_')}"


def type_display(bubble_type: str, type_displays: Mapping[str, str] | None = None) -> str:
    return (type_displays or {}).get(bubble_type) or bubble_type[:1].upper() + bubble_type[1:]


def infer_meta(data: Data, **document: Any) -> dict:
    """The `/meta` of a display-keyed data set: every key but the built-ins, its kind the commonest of its
    values'. `document`: `KindCounts.meta`'s options (given kinds, type displays, app name and version)."""
    return KindCounts(data).meta(**document)


class KindCounts:
    """Per type and key, how many values suggest each kind: what `/meta` is inferred from, kept current one
    record at a time (`add`, `remove`), so a change to a large data set does not mean reading it all again."""

    def __init__(self, data: Data) -> None:
        records = {bubble_type: list(rows) for bubble_type, rows in data.items()}
        self.owners: dict[str, str] = {
            r["_id"]: t for t, rows in records.items() for r in rows if isinstance(r.get("_id"), str)
        }
        self.counts: dict[str, dict[str, Counter]] = {}
        for bubble_type, rows in records.items():
            self.counts.setdefault(bubble_type, {})
            for record in rows:
                self._count(bubble_type, record, 1)

    def add(self, bubble_type: str, record: dict) -> None:
        if isinstance(record.get("_id"), str):
            self.owners[record["_id"]] = bubble_type
        self._count(bubble_type, record, 1)

    def remove(self, bubble_type: str, record: dict) -> None:
        # Its id stays known as its type's: a field that pointed at it keeps its kind, as in Bubble, where a
        # field's type does not change when the thing it points at is deleted.
        self._count(bubble_type, record, -1)

    def _count(self, bubble_type: str, record: dict, step: int) -> None:
        kinds = self.counts.setdefault(bubble_type, {})
        for key, value in record.items():
            if key in builtin_keys(bubble_type):
                continue
            counter = kinds.setdefault(key, Counter())
            kind = value_kind(value, self.owners)
            if kind:
                counter[kind] += step

    def meta(
        self,
        *,
        field_kinds: FieldKinds | None = None,
        type_displays: Mapping[str, str] | None = None,
        app_version: str = "live",
        appname: str = "culturebridge",
        use_captions_for_get: bool = True,
    ) -> dict:
        types = {
            bubble_type: {
                "display": type_display(bubble_type, type_displays),
                "fields": _fields(kinds, (field_kinds or {}).get(bubble_type, {})),
            }
            for bubble_type, kinds in self.counts.items()
        }
        return {
            "get": list(self.counts),
            "post": [],
            "types": types,
            "app_data": {"appname": appname, "app_version": app_version, "use_captions_for_get": use_captions_for_get},
        }


def _fields(kinds: Mapping[str, Counter], explicit: Mapping[str, str]) -> list[dict]:
    fields = []
    for key, counter in kinds.items():
        seen = +counter  # the kinds some value still suggests
        kind = explicit.get(key) or (seen.most_common(1)[0][0] if seen else "text")
        fields.append({"id": field_id(key, kind), "display": key, "type": kind})
    return fields


def value_kind(value: object, owners: Mapping[str, str]) -> str | None:
    """The field kind one value suggests, None for an empty value; `owners` maps record ids to their type."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "geographic_address" if {"lat", "lng"} <= value.keys() else "text"
    if isinstance(value, list):  # Bubble has no list of lists: an inner list counts as text, however deep
        inner = Counter(k for k in (value_kind(v, owners) if not isinstance(v, list) else "text" for v in value) if k)
        return "list." + (inner.most_common(1)[0][0] if inner else "text")
    if isinstance(value, str):
        return _text_kind(value, owners)
    return "text"


def _text_kind(value: str, owners: Mapping[str, str]) -> str:
    owner = owners.get(value)
    if owner:
        return "user" if owner == "user" else f"custom.{owner}"
    if is_iso_date(value):
        return "date"
    if is_bubble_file_url(value):
        return "image" if value.split("?", 1)[0].lower().endswith(_IMAGE_EXTENSIONS) else "file"
    return "text"


def record_keys(meta: Mapping, bubble_type: str) -> set[str]:
    """The record keys the fields of a type appear under, by the app's key-name setting."""
    key = "display" if meta.get("app_data", {}).get("use_captions_for_get", True) else "id"
    return {f[key] for f in meta.get("types", {}).get(bubble_type, {}).get("fields", [])}


def id_keyed(
    data: Data, *, field_kinds: FieldKinds | None = None, type_displays: Mapping[str, str] | None = None
) -> tuple[dict[str, list[dict]], dict]:
    """A display-keyed data set as an app with "Use field display instead of ID" off serves it, and its meta."""
    records = {bubble_type: list(rows) for bubble_type, rows in data.items()}
    meta = infer_meta(records, field_kinds=field_kinds, type_displays=type_displays, use_captions_for_get=False)
    renamed = {}
    for bubble_type, rows in records.items():
        ids = {f["display"]: f["id"] for f in meta["types"][bubble_type]["fields"]}
        renamed[bubble_type] = [{ids.get(k, k): v for k, v in record.items()} for record in rows]
    return renamed, meta
