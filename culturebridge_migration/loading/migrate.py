"""One entity's load: export records -> mapped rows and rejects -> Phase 2, in one transaction."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from culturebridge_migration.loading import deletions, loader
from culturebridge_migration.loading.deletions import DeletedRecords, Sweep
from culturebridge_migration.loading.loader import LoadResult, Schemas
from culturebridge_migration.mapping.entities import Entity
from culturebridge_migration.mapping.mapper import map_records
from culturebridge_migration.mapping.rejects import Reject


@dataclass
class EntityOutcome:
    entity: str
    exported: int
    result: LoadResult
    rejects: list[Reject]
    seconds: float
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    sweep: Sweep | None = None  # what was done with rows gone from Bubble (full exports only)

    @property
    def loaded(self) -> int:
        return self.result.staged


def migrate_entity(
    conn: psycopg.Connection,
    schemas: Schemas,
    entities: Mapping[str, Entity],
    entity: Entity,
    records: list[dict],
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
    with conn.transaction():
        loader.register_run(conn, schemas, run_id, job_name)
        refs = loader.reference_lookups(conn, schemas, entities, entity)
        batch = map_records(entity, records, refs, taken_emails=loader.taken_emails(conn, schemas, entity))
        result = loader.load_rows(conn, schemas, entity, batch.rows, run_id)
        loader.clear_rejects(conn, schemas, run_id, entity)
        loader.save_rejects(conn, schemas, run_id, batch.rejects)
        sweep = None
        if deleted_records is not None:
            ids = (r.get("_id") for r in records)
            sweep = deletions.sweep(conn, schemas, entity, ids, deleted_records, run_id)
        loader.save_entity_run(
            conn,
            schemas,
            run_id,
            entity,
            exported=len(records),
            result=result,
            rejected=len(batch.rejects),
            started_at=started,
            deleted=len(sweep.deleted) if sweep else 0,
        )
        if watermark is not None:
            loader.advance_watermark(conn, schemas, entity, watermark, run_id)
    return EntityOutcome(
        entity.name,
        len(records),
        result,
        batch.rejects,
        time.monotonic() - clock,
        dict(Counter(r.reason for r in batch.rejects)),
        sweep,
    )
