"""What a run's Dagster event log says: when each step ran, what it materialized, each check's result.

The same reader serves both modes: the in-process run's ephemeral instance and the CLI run's
`DAGSTER_HOME` instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

EventType = dg.DagsterEventType
RUN_ENDS = (EventType.RUN_SUCCESS, EventType.RUN_FAILURE, EventType.RUN_CANCELED)


@dataclass
class StepEvents:
    start: float | None = None
    end: float | None = None
    succeeded: bool = False
    first_materialization: float | None = None
    materialized: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> its metadata

    @property
    def seconds(self) -> float:
        return (self.end or 0.0) - (self.start or 0.0)


@dataclass(frozen=True)
class CheckEvent:
    asset: str
    name: str
    passed: bool
    severity: str
    metadata: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.asset}:{self.name}"


@dataclass
class RunEvents:
    run_id: str
    start: float | None = None
    end: float | None = None
    steps: dict[str, StepEvents] = field(default_factory=dict)  # only the steps that started and ended
    checks: list[CheckEvent] = field(default_factory=list)

    def metadata(self, asset: dg.AssetKey) -> dict[str, Any]:
        """The metadata of `asset`'s materialization in this run, or {}."""
        name = asset.to_user_string()
        for step in self.steps.values():
            if name in step.materialized:
                return step.materialized[name]
        return {}


def _values(metadata: Any) -> dict[str, Any]:
    return {k: v.value for k, v in metadata.items()}


def read_run_events(instance: dg.DagsterInstance, run_id: str) -> RunEvents:
    run = RunEvents(run_id)
    steps: dict[str, StepEvents] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == EventType.RUN_START:
            run.start = entry.timestamp
        elif kind in RUN_ENDS:
            run.end = entry.timestamp
        if entry.step_key is None:
            continue
        step = steps.setdefault(entry.step_key, StepEvents())
        if kind == EventType.STEP_START:
            step.start = entry.timestamp
        elif kind in (EventType.STEP_SUCCESS, EventType.STEP_FAILURE):
            step.end, step.succeeded = entry.timestamp, kind == EventType.STEP_SUCCESS
        elif kind == EventType.ASSET_MATERIALIZATION:
            step.first_materialization = step.first_materialization or entry.timestamp
            materialization = event.materialization
            step.materialized[materialization.asset_key.to_user_string()] = _values(materialization.metadata)
        elif kind == EventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            run.checks.append(
                CheckEvent(
                    check.asset_key.to_user_string(),
                    check.check_name,
                    check.passed,
                    check.severity.value,
                    _values(check.metadata),
                )
            )
    run.steps = {k: s for k, s in steps.items() if s.start is not None and s.end is not None}
    return run
