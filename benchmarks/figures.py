"""A migration run's figures, from its event log: stages, their parts, entities, steps, checks; and the
comparison with the seed's (the original plan's) throughput figures.

Stages are wall seconds (steps running at once count once). Parts and validation are step-seconds:
under the CLI's multiprocess executor two loads run at once, so they can add up to more than the load
stage's wall seconds. With `--via process` steps run one at a time and both agree.
"""

from __future__ import annotations

from benchmarks.harness.event_log import RunEvents, StepEvents
from benchmarks.harness.migration import ALL_ASSETS, MigrationRun
from benchmarks.report import CheckFigures, EntityFigures, MigrationFigures, Parts, Rate, SeedComparison
from culturebridge_migration.defs.exports import EXPORT_ASSETS, export_key
from culturebridge_migration.defs.phase2 import TABLE_ASSETS, table_key
from culturebridge_migration.defs.reports import REPORT_ASSETS
from culturebridge_migration.mapping.entities import ENTITIES

# A step's key is its asset definition's op name (bubble_export, phase2_users, report_files, ...).
STAGE_STEPS = {
    "export": {a.node_def.name for a in EXPORT_ASSETS},
    "load": {a.node_def.name for a in TABLE_ASSETS},
    "reports": {a.node_def.name for a in REPORT_ASSETS},
}
STEP_OF_ASSET = {key: a.node_def.name for a in ALL_ASSETS for key in a.keys}
SEED_PER_MINUTE = {"export": 1_000, "users_with_hashing": 500, "bookings": 1_000, "validation": 5_000}


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Wall seconds covered by the intervals (steps running in parallel count once)."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def _per_second(count: float, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def _checks_after_materialization(step: StepEvents) -> float:
    """A table step's checks run after its materialization event, until the step ends."""
    return (step.end or 0.0) - step.first_materialization if step.first_materialization else 0.0


def _metadata_sum(steps: list[StepEvents], key: str) -> float:
    return sum(float(m.get(key, 0.0)) for s in steps for m in s.materialized.values())


def _entities(events: RunEvents) -> dict[str, EntityFigures]:
    figures = {}
    for name in ENTITIES:
        exported, table = events.metadata(export_key(name)), events.metadata(table_key(name))
        step = events.steps.get(STEP_OF_ASSET[table_key(name)])
        figures[name] = EntityFigures(
            exported=int(exported.get("dagster/row_count", 0)),
            loaded=int(table.get("loaded", 0)),
            rejected=int(table.get("rejected", 0)),
            export_seconds=float(exported.get("seconds", 0.0)),
            load_seconds=step.seconds if step else 0.0,
        )
    return figures


def _checks(events: RunEvents) -> dict[str, CheckFigures]:
    return {
        c.key: CheckFigures(c.passed, c.severity, float(c.metadata["seconds"]) if "seconds" in c.metadata else None)
        for c in sorted(events.checks, key=lambda c: c.key)
    }


def _parts(exports: list[StepEvents], loads: list[StepEvents], validation: float) -> Parts:
    """From the assets' own timings; the database part is what the load steps spent beyond them."""
    read, mapping = _metadata_sum(loads, "read_seconds"), _metadata_sum(loads, "map_seconds")
    return Parts(
        hash=_metadata_sum(exports, "hash_seconds"),
        read=read,
        map=mapping,
        database=max(0.0, sum(s.seconds for s in loads) - read - mapping - validation),
    )


def migration_figures(run: MigrationRun) -> MigrationFigures:
    events = run.events
    by_stage = {name: [s for k, s in events.steps.items() if k in keys] for name, keys in STAGE_STEPS.items()}
    stages = {name: union_seconds([(s.start or 0.0, s.end or 0.0) for s in steps]) for name, steps in by_stage.items()}
    validation = sum(_checks_after_materialization(s) for s in by_stage["load"])
    parts = _parts(by_stage["export"], by_stage["load"], validation)
    entities = _entities(events)
    records = sum(e.exported for e in entities.values())
    loaded = sum(e.loaded for e in entities.values())
    checks = _checks(events)
    run_seconds = (events.end or 0.0) - events.start if events.start else 0.0
    # Stages overlap (a table loads while the export pages): the wall seconds any of them covered.
    covered = union_seconds([(s.start or 0.0, s.end or 0.0) for steps in by_stage.values() for s in steps])
    export_end = max((s.end or 0.0 for s in by_stage["export"]), default=0.0)
    return MigrationFigures(
        via=run.via,
        success=run.success,
        failed_steps=sorted(k for k, s in events.steps.items() if not s.succeeded),
        total_seconds=run.total_seconds,
        run_seconds=run_seconds,
        startup_seconds=max(0.0, run.total_seconds - run_seconds),
        records=records,
        loaded_rows=loaded,
        rejected_rows=sum(e.rejected for e in entities.values()),
        records_per_second=_per_second(records, run.total_seconds),
        stages={name: Rate(secs, _per_second(records, secs)) for name, secs in stages.items()},
        parts=parts,
        orchestration_seconds=max(0.0, run.total_seconds - covered),
        export_load_seconds=union_seconds(
            [(s.start or 0.0, s.end or 0.0) for s in by_stage["export"] + by_stage["load"]]
        ),
        after_export_seconds=max(0.0, (events.end or 0.0) - export_end) if export_end else 0.0,
        requests=sum(int(events.metadata(export_key(name)).get("requests", 0)) for name in ENTITIES),
        validation=Rate(validation, _per_second(loaded, validation)),
        checks_seconds=sum(c.seconds or 0.0 for c in checks.values()),
        load_rows_per_second=_per_second(loaded, stages["load"]),
        database_rows_per_second=_per_second(loaded, parts.database),
        passwords_hashed=int(events.metadata(export_key("users")).get("passwords_hashed", 0)),
        entities=entities,
        steps={k: s.seconds for k, s in sorted(events.steps.items())},
        checks=checks,
        peak_rss_mb=run.peak_rss_mb,
        processes_peak_rss_mb=run.processes_peak_rss_mb,
    )


def _per_minute(count: float, seconds: float) -> float | None:
    return count / seconds * 60 if seconds else None


def seed_comparison(migration: MigrationFigures) -> dict[str, SeedComparison]:
    """Our rates per minute against the seed's."""
    ents, export_rate = migration.entities, migration.stages["export"].records_per_second
    users, bookings = ents["users"], ents["bookings"]
    ours = {
        "export": export_rate * 60,
        # The users' own export time: bcrypt bounds it, however the other types share the step.
        "users_with_hashing": _per_minute(users.exported, users.export_seconds + users.load_seconds),
        # The types export at once, so the bookings' own export time is mostly the others' paging:
        # they are charged the export stage's time per record instead, then their load step.
        "bookings": _per_minute(
            bookings.exported, (bookings.exported / export_rate if export_rate else 0.0) + bookings.load_seconds
        ),
        "validation": migration.validation.records_per_second * 60,
    }
    return {
        name: SeedComparison(SEED_PER_MINUTE[name], rate, rate / SEED_PER_MINUTE[name] if rate else None)
        for name, rate in ours.items()
    }
