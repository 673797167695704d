"""The checks of a table's files step, as data (see validation/checks.py): copied, or gone at Bubble."""

from __future__ import annotations

from dataclasses import dataclass

from culturebridge_migration.files.table_files import TableFiles
from culturebridge_migration.validation.checks import SAMPLE_IDS, Check, Outcome

FILES_COPIED = "files_copied"
FILES_MISSING = "files_missing_at_bubble"


@dataclass(frozen=True)
class FilesInputs:
    """What the files step did, and whether it was a rehearsal (which copies nothing)."""

    outcome: TableFiles
    dry_run: bool


def check_files_copied(inputs: FilesInputs) -> Outcome:
    failed = inputs.outcome.failed
    ids = sorted({ref.bubble_id for ref, _ in failed})
    return _outcome(ids, {"reasons": sorted({why for _, why in failed})}, inputs.dry_run)


def check_files_missing(inputs: FilesInputs) -> Outcome:
    missing = inputs.outcome.missing
    ids = sorted({ref.bubble_id for ref in missing})
    return _outcome(ids, {"urls": sorted({ref.url for ref in missing})}, inputs.dry_run)


def _outcome(ids: list[str], examples: dict[str, list[str]], dry_run: bool) -> Outcome:
    details: dict[str, object] = {label: values[:SAMPLE_IDS] for label, values in examples.items()}
    if dry_run:
        details["skipped"] = "rehearsal: nothing was copied"
    return Outcome(not ids, len(ids), ids[:SAMPLE_IDS], details)


FILE_CHECKS: list[Check[FilesInputs]] = [
    Check(
        FILES_COPIED,
        "ERROR",
        "Every linked file Bubble still serves is copied: none failed (ERROR).",
        check_files_copied,
    ),
    Check(
        FILES_MISSING,
        "WARN",
        "Bubble still has every linked file: a 404 means it was deleted there; the records keep Bubble's dead "
        "link, listed here (WARN).",
        check_files_missing,
    ),
]
