"""Where Phase 1 records come from: Bubble's Data API, Bubble's CSV export files, or the bundled sample.

All three yield API-shaped records through one interface, so everything downstream is the same.
The bundled sample is served by the local Bubble server over HTTP (`fake_bubble.sample.sample_server`,
which the Dagster resources and the CLI open), so even the default run goes through the real API client.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from culturebridge_migration.mapping.entities import MODIFIED_KEY, Entity, extra_entity
from culturebridge_migration.mapping.values import parse_datetime
from culturebridge_migration.sources.bubble_api import BubbleClient, ExportResult
from culturebridge_migration.sources.deletion_census import CensusResult, KnownRecord, take_census
from culturebridge_migration.sources.hooks import ExportHooks
from culturebridge_migration.sources.search_windows import record_key


class RecordSource(Protocol):
    description: str

    def export(self, entity: Entity, hooks: ExportHooks) -> ExportResult: ...

    def rank(self, entities: Iterable[Entity]) -> None:
        """When the source's requests are scarce, these types' go first, in this order."""
        ...

    def meta(self) -> tuple[dict | None, str]:
        """Bubble's /meta document, or None and why it is not there."""
        ...

    def extra_types(self, migrated: Iterable[Entity], meta: dict | None) -> list[Entity]:
        """The Bubble types the source holds beyond the `migrated` ones, as entities kept verbatim.

        `meta`: the /meta document the export already read (None when hidden or not a Data API)."""
        ...

    def census(self, entity: Entity, known: Iterable[KnownRecord]) -> CensusResult | None:
        """Which `known` records the source no longer has (see sources/deletion_census.py); None: it cannot tell."""
        ...

    def count(self, entity: Entity, constraints: list[dict]) -> int:
        """How many records of the type match `constraints` now."""
        ...

    def alive_among(self, entity: Entity, bubble_ids: Iterable[str]) -> set[str] | None:
        """Of `bubble_ids`, those the source still has when asked by id; None: it cannot be asked by id."""
        ...


@dataclass
class ApiSource:
    client: BubbleClient
    description: str

    def export(self, entity: Entity, hooks: ExportHooks) -> ExportResult:
        return self.client.export(entity.bubble_type, hooks)

    def rank(self, entities: Iterable[Entity]) -> None:
        self.client.rank_types(e.bubble_type for e in entities)

    def meta(self) -> tuple[dict | None, str]:
        return self.client.meta()

    def census(self, entity: Entity, known: Iterable[KnownRecord]) -> CensusResult:
        return take_census(self.client, entity.bubble_type, known)

    def count(self, entity: Entity, constraints: list[dict]) -> int:
        return self.client.count(entity.bubble_type, constraints)

    def alive_among(self, entity: Entity, bubble_ids: Iterable[str]) -> set[str]:
        return self.client.alive_among(entity.bubble_type, bubble_ids)

    def extra_types(self, migrated: Iterable[Entity], meta: dict | None) -> list[Entity]:
        """What /meta exposes beyond the migrated types; nothing when the app hides /meta (no other list exists)."""
        exposed = meta.get("get") if isinstance(meta, dict) else None
        if not isinstance(exposed, list):
            return []
        known = {e.bubble_type for e in migrated}
        return [extra_entity(name) for name in exposed if isinstance(name, str) and name not in known]


@dataclass
class CsvSource:
    folder: Path
    timezone: str
    description: str
    encoding: str = "utf-8-sig"

    def export(self, entity: Entity, hooks: ExportHooks) -> ExportResult:
        """The file's rows; a local file needs no checkpoint: reading it again is cheap."""
        from culturebridge_migration.sources.bubble_csv import read_csv_export, unavailable_fields

        records = read_csv_export(self.folder, entity, tz=self.timezone, encoding=self.encoding)
        if hooks.modified_after is not None:
            records = [r for r in records if _modified_after(r, hooks.modified_after)]
        if hooks.prepare:
            hooks.prepare(records)
        if hooks.on_progress:
            hooks.on_progress(len(records), len(records))
        if hooks.sink:
            hooks.sink(records)
        # A file announces no total of its own: its records are the whole export, each id once.
        distinct = len({record_key(r) for r in records})
        # No page was asked of Bubble's Data API: the reports count requests only when they were made.
        result = ExportResult([] if hooks.sink else records, distinct, pages=0, unique_ids=distinct)
        result.unavailable = unavailable_fields(entity)
        return result

    def rank(self, entities: Iterable[Entity]) -> None:
        pass  # files on disk: nothing is scarce

    def meta(self) -> tuple[dict | None, str]:
        return None, "CSV exports carry no schema: the fields are learned from the files"

    def census(self, entity: Entity, known: Iterable[KnownRecord]) -> None:
        return None  # a file counts nothing by window; a full (not incremental) run compares it whole

    def count(self, entity: Entity, constraints: list[dict]) -> int:
        raise NotImplementedError("CSV files are counted by reading them")  # never asked: census() is None

    def alive_among(self, entity: Entity, bubble_ids: Iterable[str]) -> None:
        return None  # a file cannot be asked for one record: absence from it is all it says

    def extra_types(self, migrated: Iterable[Entity], meta: dict | None) -> list[Entity]:
        """Export files of types no table migrates (`export_All-Reviews_*.csv`): kept verbatim too."""
        from culturebridge_migration.sources.bubble_csv import export_prefixes

        known = {e.csv_prefix for e in migrated}
        return [
            extra_entity(prefix.removeprefix("All-").lower(), csv_prefix=prefix)
            for prefix in export_prefixes(self.folder)
            if prefix not in known
        ]


def _modified_after(record: dict, moment: datetime) -> bool:
    try:
        return parse_datetime(record.get(MODIFIED_KEY)) > moment
    except ValueError:
        return True  # unreadable dates go through, so the mapper rejects them with a reason
