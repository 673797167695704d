"""The verdict of a run, on evidence only: which checks it should judge, what each said, and what kind of run it was.

Every check reads PASS, FAIL or SKIPPED. SKIPPED means the check did not judge (why, and when it will) and is
never a pass. A run whose planned checks are not all answered, or that loaded a table no check judged, or
that planned no check at all (the reports alone, on a database no migration touched), gives NO VERDICT:
exit 0 ("switch DNS") is never given without evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RunKind(StrEnum):
    FULL = "full_migration"
    INCREMENTAL = "incremental_sync"
    CUTOVER = "cutover"
    REHEARSAL = "rehearsal"  # its transactions were rolled back: Phase 2 unchanged
    ROLLBACK = "rollback"
    FALLBACK = "fallback"  # the Phase 2 app's changes written back to Bubble
    FALLBACK_REHEARSAL = "fallback_rehearsal"  # what a fallback would write: nothing written
    VALIDATION = "validation"  # only the checks, on Phase 2 as it is
    NOTHING_TO_JUDGE = "no_migration"  # planned neither an export, a load nor a check

    @property
    def title(self) -> str:
        return _TITLES[self]


_TITLES = {
    RunKind.FULL: "Full migration",
    RunKind.INCREMENTAL: "Incremental sync",
    RunKind.CUTOVER: "Cutover",
    RunKind.REHEARSAL: "Rehearsal (rolled back: Phase 2 unchanged)",
    RunKind.ROLLBACK: "Rollback",
    RunKind.FALLBACK: "Fallback (Phase 2's changes written back to Bubble)",
    RunKind.FALLBACK_REHEARSAL: "Fallback rehearsal (nothing written to Bubble)",
    RunKind.VALIDATION: "Validation (checks only)",
    RunKind.NOTHING_TO_JUDGE: "No migration to judge",
}


def classify_run(*, dry_run: bool, incremental: bool, census: bool, migrates: bool, checks: bool) -> RunKind:
    """The kind of a run from what it was asked to do (its tags, its export's config, its plan)."""
    if dry_run:
        return RunKind.REHEARSAL
    if census:
        return RunKind.CUTOVER
    if migrates:
        return RunKind.INCREMENTAL if incremental else RunKind.FULL
    return RunKind.VALIDATION if checks else RunKind.NOTHING_TO_JUDGE


PASS, FAIL, SKIPPED = "PASS", "FAIL", "SKIPPED"


@dataclass(frozen=True)
class CheckRecord:
    """One check's result in one run, as Dagster recorded it."""

    asset: str
    check: str
    passed: bool
    severity: str
    offending_rows: int | None = None
    sample_bubble_ids: list[str] = field(default_factory=list)
    description: str = ""
    details: dict[str, object] = field(default_factory=dict)
    run_id: str = ""
    skipped: str | None = None  # why the check did not judge; None when it did
    judged_when: str | None = None  # when a skipped check will be judged
    counts: str = "rows"  # what offending_rows counts: rows, records, fields, ...

    @property
    def key(self) -> str:
        return f"{self.asset}/{self.check}"

    @property
    def outcome(self) -> str:
        """PASS, FAIL or SKIPPED; Dagster records a skipped check as passed, the reports never do."""
        return SKIPPED if self.skipped else (PASS if self.passed else FAIL)

    @property
    def label(self) -> str:
        """pass, warn (a failed WARN check), fail (a failed ERROR check) or skipped."""
        if self.outcome != FAIL:
            return self.outcome.lower()
        return "fail" if self.severity == "ERROR" else "warn"

    def describe(self) -> str:
        """The check's line in a summary."""
        line = f"[{self.label.upper()}] {self.asset} / {self.check}"
        if self.skipped:
            return f"{line}: {self.skipped}" + (f"; judged {self.judged_when}" if self.judged_when else "")
        if not self.passed:
            return f"{line} {self.offending_rows} {self.counts}, e.g. {', '.join(self.sample_bubble_ids[:3])}"
        return line


@dataclass(frozen=True)
class Verdict:
    run_id: str
    planned: int
    checks: list[CheckRecord]
    unjudged: list[str]  # planned checks with no result in the run
    no_evidence: list[str]  # why there is no verdict
    failures: list[str]  # why the run is not fit (failed ERROR checks, failed steps, ...)

    @property
    def fit(self) -> bool:
        return not self.no_evidence and not self.failures

    @property
    def word(self) -> str:
        return "NO VERDICT" if self.no_evidence else ("NOT FIT" if self.failures else "FIT")

    @property
    def reasons(self) -> list[str]:
        return [*self.failures, *self.no_evidence]

    @property
    def skipped(self) -> list[str]:
        return [c.key for c in self.checks if c.outcome == SKIPPED]

    def headline(self) -> str:
        """The verdict in one line, naming what it did not judge (a check skipped on many tables once, counted)."""
        if not (self.skipped and self.fit):
            return f"VERDICT: {self.word}"
        by_check: dict[str, list[str]] = {}
        for c in self.checks:
            if c.outcome == SKIPPED:
                by_check.setdefault(c.check, []).append(c.key)
        named = [keys[0] if len(keys) == 1 else f"{check} on {len(keys)} tables" for check, keys in by_check.items()]
        return f"VERDICT: {self.word} ({len(self.skipped)} skipped, judged later: {', '.join(named)})"

    def tally(self) -> str:
        by = [c.outcome for c in self.checks]
        return (
            f"Checks of run {self.run_id}: {self.planned} planned, {by.count(PASS)} passed, "
            f"{by.count(FAIL)} failed, {by.count(SKIPPED)} skipped"
        )


def judge(
    run_id: str, planned: list[str], checks: list[CheckRecord], loaded: list[str], failures: list[str] = ()
) -> Verdict:
    """The verdict of `run_id`: `planned` are the checks it set out to run, `loaded` the assets it wrote."""
    answered = {c.key for c in checks}
    unjudged = [key for key in planned if key not in answered]
    no_evidence = [f"{key} has no result in run {run_id}" for key in unjudged]
    judged_assets = {c.asset for c in checks}
    no_evidence += [f"{a} was loaded in run {run_id} and has no check result" for a in loaded if a not in judged_assets]
    if not planned and not checks:
        no_evidence.append(f"no check was planned in run {run_id}: it has no migration to judge")
    failed = [
        f"ERROR check {c.check} on {c.asset} failed ({c.offending_rows} {c.counts})"
        for c in checks
        if c.outcome == FAIL and c.severity == "ERROR"
    ]
    return Verdict(run_id, len(planned), checks, unjudged, no_evidence, [*failures, *failed])
