"""Several Bubble types exported at once through one source: Bubble limits requests per app, not per type.

Each type goes to `ENTITY.jsonl` under the export folder, its pages checkpointed and its plain
passwords hashed as they arrive. The types run on threads of their own; the source's client bounds
the requests in flight across all of them. The caller reads a stream of events (progress, a type
exported, a type failed) on its own thread, so only that thread talks to a run's log. If the caller
stops reading (an error, a terminated run), the other types stop at their next page; their pages
stay checkpointed and the next run resumes after them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from culturebridge_migration.mapping.entities import Entity, Kind
from culturebridge_migration.mapping.passwords import PasswordGuard
from culturebridge_migration.sources.bubble_api import BubbleError
from culturebridge_migration.sources.checkpoint import PageCheckpoint
from culturebridge_migration.sources.deletion_census import CensusOutcome, KnownRecord
from culturebridge_migration.sources.export_store import ExportManifest, ExportWriter, atomic_write
from culturebridge_migration.sources.hooks import ExportHooks, ProgressCallback
from culturebridge_migration.sources.source import RecordSource

# Failures that are about the source or its data, reported per type; anything else is a bug and stops all.
EXPORT_ERRORS = (BubbleError, FileNotFoundError, ValueError)


@dataclass(frozen=True)
class ExportPlan:
    """One type to export: all of it, or what changed after `modified_after`."""

    entity: Entity
    modified_after: datetime | None = None
    known_hashes: Mapping[tuple[str, str], str] = field(default_factory=dict)  # see PasswordGuard
    # Cutover: reads the records Phase 2 knows; after the export, a census finds which of them Bubble
    # deleted. Called by the type's own thread once its pages are in, so Bubble is asked at once.
    census_known: Callable[[], Sequence[KnownRecord]] | None = None


@dataclass
class TypeExport:
    """What one type's export left: the committed manifest and the writer's running figures."""

    entity: Entity
    manifest: ExportManifest
    writer: ExportWriter
    path: Path
    seconds: float  # wall time of this type's export, shared with the types exporting beside it
    hash_seconds: float  # of `seconds`: wall time while some page's passwords were being secured


@dataclass(frozen=True)
class ExportProgress:
    entity: str
    done: int
    total: int


@dataclass(frozen=True)
class ExportFailure:
    entity: Entity
    error: Exception


class ExportCancelled(Exception):
    """The export is stopping: its caller stopped reading."""


ExportEvent = ExportProgress | TypeExport | ExportFailure
META_FILE = "bubble_meta.json"  # Bubble's /meta as the last export found it (or why it could not)


def save_meta(source: RecordSource, export_dir: str | Path) -> tuple[dict | None, str]:
    """Ask the source for Bubble's /meta and keep it beside the exports: one request, read again by the schema."""
    document, note = source.meta()
    path = Path(export_dir) / META_FILE
    atomic_write(path, json.dumps({"document": document, "note": note}, indent=1, ensure_ascii=False))
    return document, note


def read_meta(export_dir: str | Path) -> tuple[dict | None, str]:
    path = Path(export_dir) / META_FILE
    if not path.exists():
        return None, "no export has asked Bubble for /meta yet"
    saved = json.loads(path.read_text(encoding="utf-8"))
    return saved.get("document"), saved.get("note", "")


def export_type(
    source: RecordSource,
    plan: ExportPlan,
    export_dir: str | Path,
    run_id: str,
    *,
    hash_workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> TypeExport:
    """One type to `ENTITY.jsonl`, its pages checkpointed and its plain passwords hashed as they arrive."""
    entity, started = plan.entity, time.monotonic()
    guard = PasswordGuard((f.source for f in entity.fields if f.kind is Kind.PASSWORD), plan.known_hashes, hash_workers)
    checkpoint = PageCheckpoint(Path(export_dir) / f"{entity.name}.partial.jsonl")
    writer = ExportWriter(export_dir, entity.name, keep_keys=plan.census_known is not None)
    hooks = ExportHooks(plan.modified_after, on_progress, guard, checkpoint, writer)
    try:
        result = source.export(entity, hooks)
        census = _census(source, plan, writer.keys or [])
    except BaseException:
        writer.discard()
        raise
    finally:
        guard.close()
    manifest = ExportManifest(
        entity=entity.name,
        bubble_type=entity.bubble_type,
        source=source.description,
        announced_total=result.announced_total,
        exported=writer.count,
        unique_ids=result.unique_ids,
        pages=result.pages,
        exported_at=datetime.now(UTC).isoformat(),
        run_id=run_id,
        passwords_hashed=guard.hashed,
        notes=result.notes,
        modified_after=plan.modified_after.isoformat() if plan.modified_after else None,
        max_modified=writer.max_modified.isoformat() if writer.max_modified else None,
        duplicate_ids=len(result.duplicate_ids),
        unavailable_fields=result.unavailable,
        fields=dict(writer.fields.most_common()),
        census=asdict(census) if census else None,
    )
    path = writer.commit(manifest)
    checkpoint.clear()
    return TypeExport(entity, manifest, writer, path, time.monotonic() - started, guard.seconds)


def _census(source: RecordSource, plan: ExportPlan, exported: Sequence[KnownRecord]) -> CensusOutcome | None:
    """Right after the incremental export, with Bubble read-only: what Phase 2 knows and Bubble deleted."""
    if plan.census_known is None:
        return None
    clock = time.monotonic()
    try:
        result = source.census(plan.entity, [*plan.census_known(), *exported])
    except (BubbleError, ValueError) as exc:  # the loads go on; the cutover's check says deletions are unknown
        return CensusOutcome.failed(exc, time.monotonic() - clock)
    if result is None:
        return CensusOutcome.failed(
            ValueError("the source cannot count records by window (CSV files): run a full migration instead"), 0.0
        )
    outcome = result.outcome(time.monotonic() - clock)
    if not outcome.conclusive or plan.modified_after is None:
        return outcome
    # The census is exact only if the export saw every change: a record created or edited since it ran
    # (Bubble not read-only) could hide a deletion. Bubble's count of changes now must be what it sent.
    changed_now = source.count(plan.entity, ExportHooks(plan.modified_after).modified_constraints())
    exported = len({bubble_id for _, bubble_id in exported})
    outcome = replace(outcome, requests=outcome.requests + 1, seconds=round(time.monotonic() - clock, 3))
    if changed_now == exported:
        return outcome
    return replace(
        outcome,
        conclusive=False,
        error=f"Bubble changed during the cutover: {changed_now} records are modified since "
        f"{plan.modified_after:%Y-%m-%d %H:%M:%S}, the export brought {exported}. Set the app read-only "
        "(or stop its workflows) and run the cutover again",
    )


def export_types(
    source: RecordSource,
    plans: Sequence[ExportPlan],
    export_dir: str | Path,
    run_id: str,
    *,
    hash_workers: int | None = None,
    poll_seconds: float = 1.0,
) -> Iterator[ExportEvent]:
    """Export every planned type at once; yields progress every `poll_seconds` and each type's outcome.

    The types share the source's requests in flight, and when those are scarce the plans' order decides
    who goes first: in the load order, a type's table can load while the types after it still page.
    """
    source.rank(plan.entity for plan in plans)
    progress: dict[str, ExportProgress] = {}  # written by the export threads, handed on by the caller's
    stop = threading.Event()

    def export_one(plan: ExportPlan) -> TypeExport:
        def on_progress(done: int, total: int) -> None:
            if stop.is_set():
                raise ExportCancelled
            progress[plan.entity.name] = ExportProgress(plan.entity.name, done, total)

        return export_type(source, plan, export_dir, run_id, hash_workers=hash_workers, on_progress=on_progress)

    with ThreadPoolExecutor(max_workers=max(1, len(plans))) as pool:
        futures: dict[Future, ExportPlan] = {pool.submit(export_one, plan): plan for plan in plans}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=poll_seconds, return_when=FIRST_COMPLETED)
                for name in list(progress):
                    yield progress.pop(name)
                for future in finished:
                    yield _outcome(future, futures[future].entity)
        finally:
            stop.set()  # the caller stopped early: the other types stop at their next page


def _outcome(future: Future, entity: Entity) -> TypeExport | ExportFailure:
    try:
        return future.result()
    except EXPORT_ERRORS as exc:
        return ExportFailure(entity, exc)
