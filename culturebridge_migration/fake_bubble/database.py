"""One Bubble database (the live one, or version-test's): its things, searches and `/meta`.

Searches are cached until their type changes, so paging through a large type sorts it once; searches
by a Created or Modified Date range are answered from an index of the type, built again in the
background once a burst of writes ends, as Bubble's database keeps its own; `/meta` is inferred on
first request, then kept current record by record (a change costs what the record holds).
"""

from __future__ import annotations

import json
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from culturebridge_migration.fake_bubble import meta as bubble_meta
from culturebridge_migration.fake_bubble.constraints import Schema, compile_constraint, date_bounds
from culturebridge_migration.mapping.values import parse_datetime

T = TypeVar("T")
CREATED = "Created Date"
MODIFIED = "Modified Date"
REINDEX_AFTER_QUIET = 0.3  # seconds without a write to a type before it is indexed again


def _key(record: dict) -> str:
    """Where a thing is kept: its _id; a broken record (no _id, or not text) under a key of its own, served as it is."""
    bubble_id = record.get("_id")
    return bubble_id if isinstance(bubble_id, str) else f"(no text _id) {id(record)}"


class Database:
    def __init__(
        self,
        data: Mapping[str, list[dict]] | None = None,
        *,
        search_cap: int = 50_000,
        meta: Mapping | None = None,
        field_kinds: bubble_meta.FieldKinds | None = None,
        type_displays: Mapping[str, str] | None = None,
        app_version: str = "live",
    ) -> None:
        self._things: dict[str, dict[str, dict]] = {t: {_key(r): r for r in rs} for t, rs in (data or {}).items()}
        self.search_cap = search_cap
        self._explicit_meta = dict(meta) if meta is not None else None
        self._field_kinds, self._type_displays, self._app_version = field_kinds, type_displays, app_version
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._generation = 0  # bumped by every change, so derived views know they are stale
        self._cache: dict[tuple, list[dict]] = {}
        # Per type: (its version, its index, or None when a record's Created Date is not a date).
        self._date_indexes: dict[str, tuple[int, DateIndex | None]] = {}
        self._index_builds: dict[str, threading.Lock] = {}
        self._last_write: dict[str, float] = {}
        self._reindexing: set[str] = set()  # types whose index a timer will build again
        self._derived: dict[str, tuple[int, object]] = {}
        self._kinds: bubble_meta.KindCounts | None = None  # built by the first /meta (at start), then kept current

    # -- things ---------------------------------------------------------------------------------------
    def put(self, bubble_type: str, record: dict) -> None:
        with self._lock:
            things, stored = self._things.setdefault(bubble_type, {}), dict(record)
            self._replace(bubble_type, things.get(_key(stored)), stored)
            things[_key(stored)] = stored
            self._changed(bubble_type)

    def delete(self, bubble_type: str, thing_id: str) -> bool:
        """Whether the thing was there."""
        with self._lock:
            found = self._things.get(bubble_type, {}).pop(thing_id, None)
            self._replace(bubble_type, found, None)
            self._changed(bubble_type)
            return found is not None

    def update(self, bubble_type: str, thing_id: str, change: Callable[[dict], dict]) -> bool:
        """Replace a thing by `change(thing)` in one step (no write between the read and the write); False when absent."""
        with self._lock:
            things = self._things.get(bubble_type, {})
            if thing_id not in things:
                return False
            changed = change(dict(things[thing_id]))
            self._replace(bubble_type, things[thing_id], changed)
            things[thing_id] = changed
            self._changed(bubble_type)
            return True

    def _replace(self, bubble_type: str, old: dict | None, new: dict | None) -> None:
        """Keep the counts behind /meta current (once /meta was asked for)."""
        if self._kinds is None:
            return
        if old is not None:
            self._kinds.remove(bubble_type, old)
        if new is not None:
            self._kinds.add(bubble_type, new)

    def records(self, bubble_type: str) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._things.get(bubble_type, {}).values()]

    def thing(self, bubble_type: str, thing_id: str) -> dict | None:
        with self._lock:
            found = self._things.get(bubble_type, {}).get(thing_id)
            return dict(found) if found is not None else None

    def has_type(self, bubble_type: str) -> bool:
        with self._lock:
            return bubble_type in self._things

    def _changed(self, bubble_type: str) -> None:
        self._versions[bubble_type] = self._versions.get(bubble_type, 0) + 1
        self._generation += 1
        self._last_write[bubble_type] = time.monotonic()
        if bubble_type not in self._reindexing:
            self._reindexing.add(bubble_type)
            self._reindex_later(bubble_type, REINDEX_AFTER_QUIET)

    def _reindex_later(self, bubble_type: str, seconds: float) -> None:
        timer = threading.Timer(seconds, self._reindex, (bubble_type,))
        timer.daemon = True
        timer.start()

    def _reindex(self, bubble_type: str) -> None:
        """Index a changed type again once its writes stop, as a database keeps its indexes on write: the
        first searches after a burst of changes (a cutover's) would otherwise all wait for the sort."""
        with self._lock:
            quiet = time.monotonic() - self._last_write[bubble_type]
            if quiet < REINDEX_AFTER_QUIET:
                return self._reindex_later(bubble_type, REINDEX_AFTER_QUIET - quiet)
            self._reindexing.discard(bubble_type)
            version, records = self._versions.get(bubble_type, 0), list(self._things.get(bubble_type, {}).values())
        self._date_index(bubble_type, version, records)

    # -- search ---------------------------------------------------------------------------------------
    def search(self, bubble_type: str, constraints: list, sort_field: str | None, descending: bool) -> list[dict]:
        """Matching records, sorted, capped silently at `search_cap`; ConstraintError for a bad constraint."""
        with self._lock:
            version = self._versions.get(bubble_type, 0)
            key = (bubble_type, json.dumps(constraints, sort_keys=True), sort_field, descending, version)
            if key in self._cache:
                return self._cache[key]
            records = list(self._things[bubble_type].values())
        schema = Schema(bubble_type, lambda key: self.field_exists(bubble_type, key), self.geocode)
        tests = [compile_constraint(c, schema) for c in constraints]  # a bad constraint is refused either way
        matched = self._indexed_window(bubble_type, version, records, constraints, sort_field, descending)
        if matched is None:
            matched = [r for r in records if all(test(r) for test in tests)]
            if sort_field:
                present = [r for r in matched if sort_field in r]
                present.sort(key=lambda r: _sort_value(r[sort_field]), reverse=descending)
                matched = present + [r for r in matched if sort_field not in r]
        matched = matched[: self.search_cap]
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != bubble_type or k[-1] == version}
            self._cache[key] = matched
        return matched

    def _indexed_window(
        self,
        bubble_type: str,
        version: int,
        records: list[dict],
        constraints: list,
        sort_field: str | None,
        descending: bool,
    ) -> list[dict] | None:
        """A search by a Created or Modified Date range only, sorted by Created Date, answered from an index
        as Bubble's database answers it (the census's windows, the incremental export's changes).

        The same records in the same order as testing each one (a stable sort of the type); None when
        the search has another form or some record's date is not a date, so the caller tests them.
        """
        if sort_field != CREATED or descending:
            return None
        for key in (CREATED, MODIFIED):
            bounds = date_bounds(constraints, key)
            if bounds is not None:
                index = self._date_index(bubble_type, version, records)
                return index.window(key, *bounds) if index else None
        return None

    def _date_index(self, bubble_type: str, version: int, records: list[dict]) -> DateIndex | None:
        """The type's index at `version`, built by one search while the others arriving meanwhile wait for it
        (a census asks for many windows of a changed type at once: each sorting the type cost seconds)."""
        with self._lock:
            building = self._index_builds.setdefault(bubble_type, threading.Lock())
        with building:
            with self._lock:
                built = self._date_indexes.get(bubble_type)
            if built is None or built[0] != version:
                built = (version, DateIndex.of(records))
                with self._lock:
                    self._date_indexes[bubble_type] = built
        return built[1]

    def writable_keys(self, bubble_type: str) -> frozenset[str] | None:
        """The keys a write may set, when the type's fields are known (a `/meta` given whole); None: any key."""
        types = (self._explicit_meta or {}).get("types", {})
        if bubble_type not in types:
            return None  # inferred from the records, the meta cannot tell a new field from a mistyped one
        own = bubble_meta.builtin_keys(bubble_type) - bubble_meta.BUILTIN_KEYS  # a user's authentication
        return frozenset(bubble_meta.record_keys(self._explicit_meta, bubble_type)) | own

    def field_exists(self, bubble_type: str, key: str) -> bool:
        """Whether a constraint may name `key`: a built-in, a key some thing of the type has, or a field of the meta."""
        if key in bubble_meta.builtin_keys(bubble_type) or key in self._record_keys(bubble_type):
            return True
        return key in bubble_meta.record_keys(self.meta(), bubble_type)  # inferring the meta only when it can tell

    def _record_keys(self, bubble_type: str) -> frozenset[str]:
        def compute() -> frozenset[str]:
            with self._lock:
                return frozenset(k for r in self._things.get(bubble_type, {}).values() for k in r)

        return self._derive(f"keys:{bubble_type}", compute)

    def geocode(self, address: str) -> tuple[float, float] | None:
        """(lat, lng) of an address some thing holds: the stand-in for Bubble's geocoder."""

        def compute() -> dict[str, tuple[float, float]]:
            with self._lock:
                values = [v for things in self._things.values() for r in things.values() for v in r.values()]
            return {
                v["address"].strip().lower(): (float(v["lat"]), float(v["lng"]))
                for v in values
                if isinstance(v, dict) and isinstance(v.get("address"), str) and {"lat", "lng"} <= v.keys()
            }

        return self._derive("addresses", compute).get(address.strip().lower())

    # -- /meta ----------------------------------------------------------------------------------------
    @property
    def meta_inferred(self) -> bool:
        """Whether /meta is answered without reading every record: given, or inferred and kept current since."""
        return self._explicit_meta is not None or self._kinds is not None

    def meta(self) -> dict:
        if self._explicit_meta is not None:
            return self._explicit_meta

        def compute() -> dict:
            with self._lock:
                if self._kinds is None:
                    self._kinds = bubble_meta.KindCounts({t: things.values() for t, things in self._things.items()})
                return self._kinds.meta(
                    field_kinds=self._field_kinds, type_displays=self._type_displays, app_version=self._app_version
                )

        return self._derive("meta", compute)

    def _derive(self, name: str, compute: Callable[[], T]) -> T:
        """`compute()`, cached until the next change."""
        with self._lock:
            generation = self._generation
            cached = self._derived.get(name)
        if cached and cached[0] == generation:
            return cached[1]
        value = compute()
        with self._lock:
            self._derived[name] = (generation, value)
        return value


@dataclass(frozen=True)
class DateIndex:
    """A type's records sorted by Created Date (stable: ties keep their order), and their Modified Dates."""

    created: list[datetime]
    ordered: list[dict]
    modified: list[datetime] | None  # ascending; None when a record has no ISO Modified Date
    positions: list[int]  # of each of `modified`, its record's place in `ordered`

    @classmethod
    def of(cls, records: list[dict]) -> DateIndex | None:
        """None if a record has no ISO Created Date."""
        if not all(bubble_meta.is_iso_date(r.get(CREATED)) for r in records):
            return None
        keyed = sorted(((parse_datetime(r[CREATED]), i) for i, r in enumerate(records)), key=lambda pair: pair[0])
        ordered = [records[i] for _, i in keyed]
        if not all(bubble_meta.is_iso_date(r.get(MODIFIED)) for r in ordered):
            return cls([moment for moment, _ in keyed], ordered, None, [])
        changes = sorted(((parse_datetime(r[MODIFIED]), k) for k, r in enumerate(ordered)), key=lambda pair: pair[0])
        return cls([moment for moment, _ in keyed], ordered, [moment for moment, _ in changes], [k for _, k in changes])

    def window(self, key: str, after: datetime | None, before: datetime | None) -> list[dict] | None:
        """The records whose `key` date lies strictly between `after` and `before`, in Created Date order."""
        dates = self.created if key == CREATED else self.modified
        if dates is None:
            return None
        first = bisect_right(dates, after) if after is not None else 0
        stop = bisect_left(dates, before) if before is not None else len(dates)
        if key == CREATED:
            return self.ordered[first:stop]
        return [self.ordered[k] for k in sorted(self.positions[first:stop])]


def _sort_value(value: object) -> tuple:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, str):
        try:
            return (1, parse_datetime(value).timestamp(), "")
        except ValueError:
            return (2, 0, value)
    return (3, 0, json.dumps(value, sort_keys=True))
