"""What the checks need of an export, gathered while its records stream past: counts, ids, a sample, its keys.

The load streams the export once; the checks read this digest instead of a second copy of the
records. The sample is a uniform random draw (reservoir sampling), repeatable with a seed. The key
tallies say which mapped fields the records carry and which fields no column maps.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from culturebridge_migration.mapping.coverage import Coverage
from culturebridge_migration.mapping.entities import ID_KEY, Entity
from culturebridge_migration.mapping.mapper import is_empty, path_getter
from culturebridge_migration.mapping.rejects import MASK, display_value, printable
from culturebridge_migration.mapping.values import bubble_id as valid_id

SAMPLE_VALUES = 3  # sample values shown per unmapped field
# Values a report must never show, whatever the app called the field.
_SECRET = re.compile(r"password|passwd|secret|token|api[ _-]?key|hash|salt|credential", re.IGNORECASE)


@dataclass
class Unmapped:
    """A field no column maps: in how many records, a few of its values, and a few of those records."""

    records: int = 0
    values: list[str | None] = field(default_factory=list)
    bubble_ids: list[str] = field(default_factory=list)


class ExportDigest:
    def __init__(self, entity: Entity, sample_size: int, seed: int | None = None) -> None:
        self.count = 0
        self.ids: list[str] = []
        self.sample: list[dict] = []
        self.keys: Counter[str] = Counter()  # top-level keys, in how many records
        self.nested: Counter[str] = Counter()  # mapped dotted paths (and fallbacks), in how many records
        self.unmapped: dict[str, Unmapped] = {}
        self._coverage = Coverage(entity)
        self._paths = {p: path_getter(p) for f in entity.fields for p in (f.source, f.fallback) if p and "." in p}
        self._sample_size = sample_size
        self._random = random.Random(seed)

    def watch(self, records: Iterable[dict]) -> Iterator[dict]:
        """`records`, unchanged, noting each one as it passes."""
        for record in records:
            self._note(record)
            yield record

    def consume(self, records: Iterable[dict]) -> ExportDigest:
        for record in records:
            self._note(record)
        return self

    def carried(self, key: str) -> int:
        """In how many records `key` (a top-level key or a mapped dotted path) holds a value."""
        return self.nested[key] if key in self._paths else self.keys[key]

    def _note(self, record: dict) -> None:
        self.count += 1
        bubble_id = record.get(ID_KEY)
        if valid_id(bubble_id) is not None:
            self.ids.append(bubble_id)
        self.keys.update(record.keys())
        for path, get in self._paths.items():
            if not is_empty(get(record)):
                self.nested[path] += 1
        for path, value in self._coverage.uncovered(record):
            self._unmapped(path, value, bubble_id)
        self._draw(record)

    def _unmapped(self, path: str, value: object, bubble_id: object) -> None:
        tally = self.unmapped.setdefault(path, Unmapped())
        tally.records += 1
        if len(tally.values) < SAMPLE_VALUES:
            tally.values.append(MASK if _SECRET.search(path) else display_value(value))
            tally.bubble_ids.append(printable(bubble_id))

    def _draw(self, record: dict) -> None:
        if len(self.sample) < self._sample_size:
            self.sample.append(record)
        else:
            slot = self._random.randrange(self.count)
            if slot < self._sample_size:
                self.sample[slot] = record
