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

from culturebridge_migration.loading import bookkeeping, deletions, loader
from culturebridge_migration.loading.deletions import (
    DeletedRecords,
    Gone,
    StillInBubble,
    Sweep,
    conclusive_census,
    proves_whole_type,
)
from culturebridge_migration.loading.isolation import refusal_reject
from culturebridge_migration.loading.loader import LoadResult
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.corrections import EntityFixes
from culturebridge_migration.mapping.entities import ID_KEY, Entity, Kind
from culturebridge_migration.mapping.file_links import relinked, url_columns
from culturebridge_migration.mapping.fixes import ValueFix
from culturebridge_migration.mapping.mapper import RefLookup, map_records
from culturebridge_migration.mapping.rejects import Reject
from culturebridge_migration.mapping.values import bubble_id
from culturebridge_migration.sources.export_store import ExportManifest

CHUNK_RECORDS = 20_000


@dataclass
class EntityOutcome:
    entity: str
    exported: int
    result: LoadResult
    rejects: list[Reject]
    seconds: float
    fixes: list[ValueFix] = field(default_factory=list)  # values changed before they were stored
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    sweep: Sweep | None = None  # what was done with rows gone from Bubble (full exports only)
    read_seconds: float = 0.0  # of `seconds`: pulling records from the export
    map_seconds: float = 0.0  # of `seconds`: mapping them to rows; the rest is the database's

    @property
    def loaded(self) -> int:
        return self.result.loaded

    def record(self) -> bookkeeping.LoadRecord:
        """What the load did, as the bookkeeping keeps it (a rehearsal keeps it after the rollback)."""
        deleted = len(self.sweep.deleted) if self.sweep else 0
        return bookkeeping.LoadRecord(self.exported, self.result, self.rejects, self.fixes, deleted)


FEW_RECORDS = 10_000  # a load this small looks up only the references its records make


def _few_or_streamed(records: Iterable[dict]) -> tuple[Iterable[dict], list[dict] | None]:
    """The records to load, and the same as a list when there are at most FEW_RECORDS (read no further)."""
    iterator = iter(records)
    head = list(itertools.islice(iterator, FEW_RECORDS + 1))
    if len(head) <= FEW_RECORDS:
        return head, head
    return itertools.chain(head, iterator), None


class _AskedIds(dict):
    """Has every id (as 0), so a dry mapping goes on past each reference, and keeps the ids it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:
        self.asked.add(key)
        return 0


def _asked_ids(entity: Entity, records: list[dict], decisions: EntityFixes | None) -> dict[str, set[str]]:
    """The Bubble ids the mapping of `records` looks up, per referenced entity: exactly those, read by a dry
    mapping (the team's corrections applied first, as the load does, but not remembered) against lookups that
    have every id (the mapper decides how a raw value becomes an id, so nothing else may)."""
    asked = {name: _AskedIds() for name in entity.upstream}
    if asked:
        if decisions is not None:
            records = [decisions.apply(record, remember=False)[0] for record in records]
        map_records(entity, records, {name: RefLookup(ids) for name, ids in asked.items()})
    return {name: ids.asked for name, ids in asked.items()}


class StreamedMapping:
    """Maps records a chunk at a time as the loader pulls rows; keeps the ids, the count and the rejects.

    It also times its two parts of the load (reading the export, mapping), so a slow load says where
    its seconds went.
    """

    def __init__(
        self,
        entity: Entity,
        refs: Mapping[str, RefLookup],
        taken_emails: Mapping[str, str],
        decisions: EntityFixes | None = None,
        file_copies: Mapping[str, str] | None = None,
    ) -> None:
        self.entity, self.refs, self.taken_emails, self.decisions = entity, refs, taken_emails, decisions
        self.file_copies, self.url_columns = file_copies or {}, url_columns(entity)
        self.exported = 0
        self.read_seconds = self.map_seconds = 0.0
        self.ids: list[str] = []
        self.rejects: list[Reject] = []
        self.fixes: list[ValueFix] = []
        # The earliest-created record wins a duplicate email, whatever the file's order: a type
        # with emails (users, the smallest large type) is mapped in one batch.
        has_email = any(f.kind is Kind.EMAIL for f in entity.fields)
        self.chunk_size = None if has_email else CHUNK_RECORDS

    def rows(self, records: Iterable[dict]) -> Iterator[dict[str, object]]:
        chunks = _chunks(records, self.chunk_size)
        while (chunk := self._read(chunks)) is not None:
            clock = time.perf_counter()
            # Only ids that pass Bubble's test: a hostile one (a NUL, a list) is the mapper's reject, not a sweep's crash.
            self.ids += [i for r in chunk if (i := bubble_id(r.get(ID_KEY))) is not None]
            decided: list[ValueFix] = []
            if self.decisions is not None:  # the team's corrections, before the mapper judges the records
                chunk = [self._decide(record, decided) for record in chunk]
            batch = map_records(self.entity, chunk, self.refs, taken_emails=self.taken_emails)
            relinked(batch.rows, self.url_columns, self.file_copies)  # files copied earlier: their copies
            # A correction is kept only where its record became a row: a reject's id may be no id at all (a NUL).
            rows = {str(row["bubble_id"]) for row in batch.rows}
            self.rejects += batch.rejects
            self.fixes += [f for f in decided if f.bubble_id in rows] + batch.fixes
            self.exported += len(chunk)
            self.map_seconds += time.perf_counter() - clock
            yield from batch.rows

    def _decide(self, record: dict, decided: list[ValueFix]) -> dict:
        fixed, fixes = self.decisions.apply(record)  # type: ignore[union-attr]
        decided += fixes
        return fixed

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


def _gone(
    db: Phase2Database,
    entity: Entity,
    export: ExportManifest | None,
    mapping: StreamedMapping,
    mode: DeletedRecords,
    still_in_bubble: StillInBubble | None,
) -> Gone | None:
    """The migrated rows Bubble no longer has, by a full export or a census; None when the export proves nothing.

    In report mode nothing is written, so nothing is looked up: the deleted_in_bubble check lists them.
    A full export's absent rows are asked for by id before anything is done to them; a census asked already.
    """
    if proves_whole_type(export, mapping.exported):
        if mode is DeletedRecords.REPORT:
            return Gone([])
        return Gone.asking(entity, deletions.gone_from_full_export(db, entity, mapping.ids), still_in_bubble)
    census = conclusive_census(export, mapping.exported)
    if census is None:
        return None
    return Gone([] if mode is DeletedRecords.REPORT else deletions.migrated_among(db, entity, census.gone))


def migrate_entity(
    db: Phase2Database,
    entity: Entity,
    records: Iterable[dict],
    *,
    run_id: str,
    job_name: str,
    watermark: datetime | None = None,
    deleted_records: DeletedRecords | None = None,
    export: ExportManifest | None = None,
    decisions: EntityFixes | None = None,
    still_in_bubble: StillInBubble | None = None,
) -> EntityOutcome:
    """Load one entity's export.

    `watermark`: the newest Modified Date it holds, saved with the load. `deleted_records`: what to do
    with migrated rows the export no longer holds, done only when `export` (its manifest) proves it
    whole, checked here, at the point of deletion: every record of the type, as many as Bubble
    announced, each once, and exactly the records this load read. `still_in_bubble` asks Bubble for
    those rows by id first; without it nothing is deleted (the rows are flagged, unconfirmed).
    """
    started, clock = datetime.now(UTC), time.monotonic()
    with bookkeeping.entity_load(db, run_id, job_name):
        copies = db.file_copies(entity) if url_columns(entity) else {}
        records, few = _few_or_streamed(records)
        refs = db.reference_lookups(entity, only=_asked_ids(entity, few, decisions) if few is not None else None)
        mapping = StreamedMapping(entity, refs, loader.taken_emails(db, entity), decisions, copies)
        load = loader.load_rows(db, entity, mapping.rows(records), run_id)
        refused = {str(row["bubble_id"]) for row, _ in load.refused}
        rejects = mapping.rejects + [refusal_reject(entity, row, error) for row, error in load.refused]
        fixes = [fix for fix in mapping.fixes if fix.bubble_id not in refused]  # a refused row stored nothing
        sweep = None
        gone = None if deleted_records is None else _gone(db, entity, export, mapping, deleted_records, still_in_bubble)
        if gone is not None:
            sweep = deletions.sweep(db, entity, gone, deleted_records, run_id)
        done = bookkeeping.LoadRecord(mapping.exported, load.result, rejects, fixes, len(sweep.deleted) if sweep else 0)
        bookkeeping.record_load(db, run_id, entity, done, started_at=started, watermark=watermark)
    return EntityOutcome(
        entity.name,
        mapping.exported,
        load.result,
        rejects,
        time.monotonic() - clock,
        fixes,
        dict(Counter(r.reason for r in rejects)),
        sweep,
        mapping.read_seconds,
        mapping.map_seconds,
    )
