"""What the checks need of an export, gathered while its records stream past: count, ids, a sample.

The load streams the export once; the checks read this digest instead of a second copy of the
records. The sample is a uniform random draw (reservoir sampling), repeatable with a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from culturebridge_migration.mapping.entities import ID_KEY


class ExportDigest:
    def __init__(self, sample_size: int, seed: int | None = None) -> None:
        self.count = 0
        self.ids: list[str] = []
        self.sample: list[dict] = []
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

    def _note(self, record: dict) -> None:
        self.count += 1
        if record.get(ID_KEY):
            self.ids.append(record[ID_KEY])
        if len(self.sample) < self._sample_size:
            self.sample.append(record)
        else:
            slot = self._random.randrange(self.count)
            if slot < self._sample_size:
                self.sample[slot] = record
