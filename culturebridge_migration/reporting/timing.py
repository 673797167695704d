"""How long a run and each of its stages took, from when each step ran: pure, no Dagster.

Stages interleave (a table's files copy while the next table loads), so a stage's time is the union of
its own steps' spans, never its first step to its last; the run's time is its first step to its last.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepSpan:
    step: str
    start: float  # Unix seconds
    end: float  # Unix seconds; the moment of the report for a step still running


@dataclass(frozen=True)
class RunTiming:
    run_seconds: float | None  # the first step's start to the last step's end: at cutover, the downtime
    stages: dict[str, float] = field(default_factory=dict)  # seconds during which a step of the stage ran


def stage_of(step_key: str) -> str:
    if step_key == "bubble_export":
        return "export"
    if step_key.startswith("phase2_"):
        return "load and checks"
    if step_key.startswith("files_"):
        return "files"
    return "reports" if step_key.startswith(("report", "reports__")) else "other"


def _covered(spans: list[StepSpan]) -> float:
    """Seconds covered by at least one span: steps of a stage that ran at once count once."""
    total, reach = 0.0, float("-inf")
    for span in sorted(spans, key=lambda s: s.start):
        if span.end > reach:
            total += span.end - max(span.start, reach)
            reach = span.end
    return total


def run_timing_of(spans: list[StepSpan]) -> RunTiming:
    if not spans:
        return RunTiming(None)
    by_stage: dict[str, list[StepSpan]] = {}
    for span in spans:
        by_stage.setdefault(stage_of(span.step), []).append(span)
    wall = max(s.end for s in spans) - min(s.start for s in spans)
    return RunTiming(round(wall, 1), {stage: round(_covered(group), 1) for stage, group in by_stage.items()})
