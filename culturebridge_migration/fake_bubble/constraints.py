"""Search constraints of Bubble's Data API: parsing, validation and matching.

The constraint types are the manual's ("Data API requests", constraint types): `equals` / `not equal`
(strict equality, any field), `is_empty` / `is_not_empty` (any field), `text contains` /
`not text contains` (text fields; whole words, so a partial word matches only when it is the same stem),
`greater than` / `less than` (text, number and date fields), `in` / `not in` (the field's value is in the
given list), `contains` / `not contains` and `empty` / `not empty` (list fields), and `geographic_search`
(a geographic address within `range` of `origin_address`).

Choices where the manual is silent, kept few and stated: an empty field is `not equal` to anything, does
`not text contains` anything and is `not in` any list; a list field is `in` a list when one of its entries
is; a geographic range is in miles unless the value says `"unit": "km"`; an `origin_address` must be a
`{"lat", "lng"}` object, a "lat,lng" text, or an address that some record of the app holds (there is no
geocoder here).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from culturebridge_migration.fake_bubble.meta import is_iso_date
from culturebridge_migration.mapping.values import parse_datetime

CONSTRAINT_TYPES = (
    "equals",
    "not equal",
    "is_empty",
    "is_not_empty",
    "text contains",
    "not text contains",
    "greater than",
    "less than",
    "in",
    "not in",
    "contains",
    "not contains",
    "empty",
    "not empty",
    "geographic_search",
)
EARTH_RADIUS = {"miles": 3958.8, "km": 6371.0}

Predicate = Callable[[dict], bool]  # on a record
ValueTest = Callable[[object], bool]  # on the value of the constrained field (None when absent)
Geocoder = Callable[[str], tuple[float, float] | None]  # an address text -> (lat, lng), None if unknown


class ConstraintError(Exception):
    """A constraint Bubble refuses: answered with `status` and Bubble's error body."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def parse_constraints(text: str | None) -> list[dict]:
    """The `constraints` query parameter as a list of constraint objects; ConstraintError (400) if malformed."""
    try:
        constraints = json.loads(text or "[]")
    except ValueError as exc:
        raise ConstraintError(400, "INVALID_DATA", f"Invalid JSON for constraints: {exc}") from None
    if not isinstance(constraints, list) or not all(isinstance(c, dict) for c in constraints):
        raise ConstraintError(400, "INVALID_DATA", "constraints must be a JSON array of constraint objects")
    for constraint in constraints:
        if not isinstance(constraint.get("key"), str) or not isinstance(constraint.get("constraint_type"), str):
            raise ConstraintError(400, "INVALID_DATA", f"A constraint needs a key and a constraint_type: {constraint}")
    return constraints


@dataclass(frozen=True)
class Schema:
    """What a search of one type may constrain on."""

    bubble_type: str
    field_exists: Callable[[str], bool]
    geocode: Geocoder


Builder = Callable[
    [object, Schema], ValueTest
]  # a constraint's value -> its ValueTest; ConstraintError if the value is bad


def compile_constraint(constraint: Mapping, schema: Schema) -> Predicate:
    """A record predicate for one constraint; ConstraintError (400 unknown type or bad value, 404 unknown field)."""
    key, kind, value = constraint["key"], constraint["constraint_type"], constraint.get("value")
    if kind not in CONSTRAINT_TYPES:
        raise ConstraintError(
            400, "INVALID_DATA", f"Unrecognized constraint type {kind!r}; known: {', '.join(CONSTRAINT_TYPES)}"
        )
    if not schema.field_exists(key):
        raise ConstraintError(404, "NOT_FOUND", f"Field not found {key} for type {schema.bubble_type}")
    test = _BUILDERS[kind](value, schema)
    return lambda record: test(record.get(key))


# -- the tests, each built once per search from the constraint's value ----------------------------------
def _present(value: object) -> bool:
    return value not in (None, "", [], {})


def _negated(build: Builder) -> Builder:
    def negated_builder(value: object, schema: Schema) -> ValueTest:
        test = build(value, schema)
        return lambda actual: not test(actual)

    return negated_builder


def _equals(expected: object, _schema: Schema) -> ValueTest:
    return lambda actual: _present(actual) and _same(actual, expected)


def _is_empty(_value: object, _schema: Schema) -> ValueTest:
    return lambda actual: not _present(actual)


def _text_contains(expected: object, _schema: Schema) -> ValueTest:
    if not isinstance(expected, str):
        raise ConstraintError(400, "INVALID_DATA", f"text contains needs a text value, not {expected!r}")
    wanted = _words(expected)
    return lambda actual: isinstance(actual, str) and _has_words(_words(actual), wanted)


def _ordering(sign: int) -> Builder:
    def build(expected: object, _schema: Schema) -> ValueTest:
        if not isinstance(expected, str | int | float) or isinstance(expected, bool):
            raise ConstraintError(
                400, "INVALID_DATA", f"greater than / less than need a text, number or date: {expected!r}"
            )

        def test(actual: object) -> bool:
            order = _order(actual, expected)
            return order is not None and order * sign > 0

        return test

    return build


def _in(expected: object, _schema: Schema) -> ValueTest:
    if not isinstance(expected, list):
        raise ConstraintError(400, "INVALID_DATA", f"in / not in need a list value, not {expected!r}")
    return lambda actual: (
        _present(actual)
        and any(_same(a, e) for a in (actual if isinstance(actual, list) else [actual]) for e in expected)
    )


def _contains(expected: object, _schema: Schema) -> ValueTest:
    return lambda actual: isinstance(actual, list) and any(_same(a, expected) for a in actual)


def _geographic_search(expected: object, schema: Schema) -> ValueTest:
    if (
        not isinstance(expected, dict)
        or not isinstance(expected.get("range"), int | float)
        or "origin_address" not in expected
    ):
        raise ConstraintError(
            400, "INVALID_DATA", f"geographic_search needs a value with a range and an origin_address: {expected!r}"
        )
    origin = _origin(expected["origin_address"], schema.geocode)
    radius = EARTH_RADIUS["km" if expected.get("unit") == "km" else "miles"]

    def test(actual: object) -> bool:
        point = _point(actual)
        return point is not None and _distance(origin, point, radius) <= expected["range"]

    return test


_BUILDERS: dict[str, Builder] = {
    "equals": _equals,
    "not equal": _negated(_equals),
    "is_empty": _is_empty,
    "is_not_empty": _negated(_is_empty),
    "text contains": _text_contains,
    "not text contains": _negated(_text_contains),
    "greater than": _ordering(1),
    "less than": _ordering(-1),
    "in": _in,
    "not in": _negated(_in),
    "contains": _contains,
    "not contains": _negated(_contains),
    "empty": _is_empty,
    "not empty": _negated(_is_empty),
    "geographic_search": _geographic_search,
}


def date_bounds(constraints: list[dict], key: str) -> tuple[datetime | None, datetime | None] | None:
    """(after, before) when every constraint is `key` strictly greater or less than a date, else None.

    Such searches (the export's windows, the deletion census's counts) can be answered from an index
    of the type sorted by that date instead of testing every record, as Bubble's own database does.
    """
    after: datetime | None = None
    before: datetime | None = None
    for constraint in constraints:
        kind, value = constraint.get("constraint_type"), constraint.get("value")
        if constraint.get("key") != key or kind not in ("greater than", "less than") or not is_iso_date(value):
            return None
        moment = _date_of(value)
        if kind == "greater than":
            after = moment if after is None else max(after, moment)
        else:
            before = moment if before is None else min(before, moment)
    return after, before


# -- comparing values the way Bubble types them -------------------------------------------------------
def _as_date(actual: object, expected: object) -> tuple[datetime, datetime] | None:
    """Both as dates when the field holds a date (the value may be any date form, or epoch milliseconds)."""
    if not is_iso_date(actual) or not isinstance(expected, str | int | float) or isinstance(expected, bool):
        return None
    try:
        return parse_datetime(actual), _date_of(expected)
    except ValueError:
        return None


@lru_cache(maxsize=1024)  # a constraint's value, parsed once rather than once per record
def _date_of(value: str | float) -> datetime:
    return parse_datetime(value)


def _same(actual: object, expected: object) -> bool:
    dates = _as_date(actual, expected)
    return dates[0] == dates[1] if dates else actual == expected


def _order(actual: object, expected: object) -> int | None:
    """-1, 0 or 1 as `actual` sorts before, with or after `expected`; None where they do not compare."""
    pair = _as_date(actual, expected)
    if pair is None:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, expected))
        if not numbers and not (isinstance(actual, str) and isinstance(expected, str)):
            return None
        pair = (actual, expected)
    left, right = pair
    return (left > right) - (left < right)


_SUFFIXES = ("s", "es", "d", "ed", "ing")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _has_words(words: list[str], wanted: list[str]) -> bool:
    return all(any(_same_stem(word, w) for word in words) for w in wanted)


def _same_stem(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return long == short or (long.startswith(short) and long[len(short) :] in _SUFFIXES)


def _point(value: object) -> tuple[float, float] | None:
    if isinstance(value, dict) and all(isinstance(value.get(k), int | float) for k in ("lat", "lng")):
        return float(value["lat"]), float(value["lng"])
    return None


def _origin(address: object, geocode: Geocoder) -> tuple[float, float]:
    point = _point(address)
    if point is None and isinstance(address, str):
        parts = address.split(",")
        try:
            point = (float(parts[0]), float(parts[1])) if len(parts) == 2 else geocode(address)
        except ValueError:
            point = geocode(address)
    if point is None:
        raise ConstraintError(400, "INVALID_DATA", f"Could not find the origin_address {address!r}")
    return point


def _distance(a: tuple[float, float], b: tuple[float, float], radius: float) -> float:
    """Great-circle distance (haversine)."""
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(h))
