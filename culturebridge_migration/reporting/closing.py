"""The few lines a run ends with, so the person at the terminal reads the outcome last, without scrolling.

What kind of run, how long and how many Bubble requests, the checks that failed or did not judge, the
records rejected per table, where the reports are, and the verdict as the very last line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from culturebridge_migration.reporting.verdict import FAIL, SKIPPED, CheckRecord, RunKind, Verdict

LISTED_FAILURES = 10  # more failed checks than this are counted, not listed: the reports have them all


def closing_block(
    verdict: Verdict,
    *,
    kind: RunKind,
    run_seconds: float | None,
    requests: int,
    rejects: Mapping[str, int],
    reports: Sequence[str],
) -> str:
    failed = [c for c in verdict.checks if c.outcome == FAIL]
    failed.sort(key=lambda c: c.severity != "ERROR")  # what stops the cutover first
    lines = [
        f"{kind.title}, run {verdict.run_id}: {run_seconds or 0:.1f} s from first step to last, "
        f"{requests} requests to Bubble's Data API",
        verdict.tally(),
        *(f"  {c.describe()}" for c in failed[:LISTED_FAILURES]),
        *([f"  ... and {len(failed) - LISTED_FAILURES} more failed checks"] if len(failed) > LISTED_FAILURES else []),
        *_skipped_lines(verdict.checks),
        *(f"  {reason}" for reason in verdict.no_evidence[:LISTED_FAILURES]),
        _rejects_line(rejects),
        f"Reports: {', '.join(reports)}" if reports else "Reports: none written",
        verdict.headline(),
    ]
    return "\n".join(lines)


def _skipped_lines(checks: Sequence[CheckRecord]) -> list[str]:
    """One line per check that did not judge: named when on one table, counted when on many."""
    by_check: dict[str, list[CheckRecord]] = {}
    for c in checks:
        if c.outcome == SKIPPED:
            by_check.setdefault(c.check, []).append(c)
    return [
        f"  {group[0].describe()}"
        if len(group) == 1
        else f"  [SKIPPED] {name} on {len(group)} tables: {group[0].skipped}"
        for name, group in by_check.items()
    ]


def _rejects_line(rejects: Mapping[str, int]) -> str:
    some = {table: count for table, count in rejects.items() if count}
    listed = ", ".join(f"{table} {count}" for table, count in some.items())
    return f"Rejected records: {sum(some.values())}" + (f" ({listed})" if listed else "")
