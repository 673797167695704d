"""One entity's load: export records -> mapped rows and rejects -> Phase 2, in one transaction.

Records stream through: they are mapped a chunk at a time while the loader COPYs the rows, so
memory holds one chunk, the ids and the rejects, never the whole export.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from culturebridge_migration.loading import deletions, loader
from culturebridge_migration.loading.deletions import DeletedRecords, Sweep
from culturebridge_migration.loading.loader import LoadResult
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ID_KEY, Entity, Kind
from culturebridge_migration.mapping.mapper import RefLookup, map_records
from culturebridge_migration.mapping.rejects import Reject

CHUNK_RECORDS = 20_000


@dataclass
class EntityOutcome:
    entity: str
    exported: int
    result: LoadResult
    rejects: list[Reject]
    seconds: float
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    sweep: Sweep | None = None  # what was done with rows gone from Bubble (full exports only)
    read_seconds: float = 0.0  # of `seconds`: pulling records from the export
    map_seconds: float = 0.0  # of `seconds`: mapping them to rows; the rest is the database's

    @property
    def loaded(self) -> int:
        return self.result.loaded


class StreamedMapping:
    """Maps records a chunk at a time as the loader pulls rows; keeps the ids, the count and the rejects.

    It also times its two parts of the load (reading the export, mapping), so a slow load says where
    its seconds went.
    """

    def __init__(self, entity: Entity, refs: Mapping[str, RefLookup], taken_emails: Mapping[str, str]) -> None:
        self.entity, self.refs, self.taken_emails = entity, refs, taken_emails
        self.exported = 0
        self.read_seconds = self.map_seconds = 0.0
        self.ids: list[str] = []
        self.rejects: list[Reject] = []
        # The earliest-created record wins a duplicate email, whatever the file's order: a type
        # with emails (users, the smallest large type) is mapped in one batch.
        has_email = any(f.kind is Kind.EMAIL for f in entity.fields)
        self.chunk_size = None if has_email else CHUNK_RECORDS

    def rows(self, records: Iterable[dict]) -> Iterator[dict[str, object]]:
        chunks = _chunks(records, self.chunk_size)
        while (chunk := self._read(chunks)) is not None:
            clock = time.perf_counter()
            self.ids += [r[ID_KEY] for r in chunk if r.get(ID_KEY)]
            batch = map_records(self.entity, chunk, self.refs, taken_emails=self.taken_emails)
            self.rejects += batch.rejects
            self.exported += len(chunk)
            self.map_seconds += time.perf_counter() - clock
            yield from batch.rows

    def _read(self, chunks: Iterator[list[dict]]) -> list[dict] | None:
        clock = time.perf_counter()
        try:
            return next(chunks, None)
        finally:
            self.read_seconds += time.perf_counter() - clock


def _chunks(records: Iterable[dict], size: int | None) -> Iterator[list[dict]]:
    if size is None:
        yield list(records)
        return
    it = iter(records)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def migrate_entity(
    db: Phase2Database,
    entity: Entity,
    records: Iterable[dict],
    *,
    run_id: str,
    job_name: str,
    watermark: datetime | None = None,
    deleted_records: DeletedRecords | None = None,
) -> EntityOutcome:
    """Load one entity's export.

    `watermark`: the newest Modified Date it holds, saved with the load. `deleted_records`: for a
    full export, what to do with migrated rows it no longer holds (None: an incremental export).
    """
    started, clock = datetime.now(UTC), time.monotonic()
    with db.transaction():
        db.register_run(run_id, job_name)
        mapping = StreamedMapping(entity, db.reference_lookups(entity), loader.taken_emails(db, entity))
        result = loader.load_rows(db, entity, mapping.rows(records), run_id)
        loader.clear_rejects(db, run_id, entity)
        loader.save_rejects(db, run_id, mapping.rejects)
        sweep = None
        if deleted_records is not None:
            sweep = deletions.sweep(db, entity, mapping.ids, deleted_records, run_id)
        loader.save_entity_run(
            db,
            run_id,
            entity,
            exported=mapping.exported,
            result=result,
            rejected=len(mapping.rejects),
            started_at=started,
            deleted=len(sweep.deleted) if sweep else 0,
        )
        if watermark is not None:
            db.advance_watermark(entity, watermark, run_id)
    return EntityOutcome(
        entity.name,
        mapping.exported,
        result,
        mapping.rejects,
        time.monotonic() - clock,
        dict(Counter(r.reason for r in mapping.rejects)),
        sweep,
        mapping.read_seconds,
        mapping.map_seconds,
    )
