"""What an export does besides fetching pages: which records it asks for, and what happens to each page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from culturebridge_migration.mapping.entities import MODIFIED_KEY
from culturebridge_migration.mapping.values import format_bubble_datetime
from culturebridge_migration.sources.checkpoint import PageCheckpoint

ProgressCallback = Callable[[int, int], None]  # (records so far, announced total)


@dataclass(frozen=True)
class ExportHooks:
    """The same hooks for every source (the Data API, CSV files).

    `prepare` runs on each page as it arrives (the export hashes passwords there), before the page is
    saved to `checkpoint`, from which a killed export resumes. With a `sink`, records are handed to it
    as they arrive instead of being gathered in the result.
    """

    modified_after: datetime | None = None  # only records changed after this (an incremental export)
    on_progress: ProgressCallback | None = None
    prepare: Callable[[list[dict]], None] | None = None
    checkpoint: PageCheckpoint | None = None
    sink: Callable[[list[dict]], None] | None = None

    def modified_constraints(self) -> list[dict]:
        """Bubble constraints selecting the records changed after `modified_after` (none: every record)."""
        if self.modified_after is None:
            return []
        value = format_bubble_datetime(self.modified_after)
        return [{"key": MODIFIED_KEY, "constraint_type": "greater than", "value": value}]
