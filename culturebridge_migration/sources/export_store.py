"""Exports on disk: one JSON Lines file per entity plus a manifest, written atomically.

The files are what the Phase 2 tables load from, so `--select group:phase2` can load again
without asking Bubble. They never hold a plain-text password (see `mapping.passwords`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ExportManifest:
    entity: str
    bubble_type: str
    source: str  # where the records came from, without secrets
    announced_total: int  # what Bubble said the type holds (for CSV: the rows in the file)
    exported: int
    unique_ids: int
    pages: int
    exported_at: str
    run_id: str
    passwords_hashed: int = 0
    notes: list[str] = field(default_factory=list)
    modified_after: str | None = None  # incremental exports: only records changed after this
    max_modified: str | None = None  # the newest Modified Date exported: the next watermark

    @property
    def complete(self) -> bool:
        return self.exported >= self.announced_total and self.unique_ids == self.exported


def export_paths(folder: str | Path, entity: str) -> tuple[Path, Path]:
    folder = Path(folder)
    return folder / f"{entity}.jsonl", folder / f"{entity}.manifest.json"


def write_export(folder: str | Path, records: list[dict], manifest: ExportManifest) -> Path:
    data_path, manifest_path = export_paths(folder, manifest.entity)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(data_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    _atomic_write(manifest_path, json.dumps(asdict(manifest), indent=2))
    return data_path


def read_export(folder: str | Path, entity: str) -> tuple[list[dict], ExportManifest]:
    data_path, manifest_path = export_paths(folder, entity)
    if not data_path.exists() or not manifest_path.exists():
        raise FileNotFoundError(
            f"No export of {entity} in {Path(folder).resolve()}: materialize the export first "
            f"(dagster asset materialize -m culturebridge_migration --select bubble/{entity}) "
            "or point MIGRATION_EXPORT_DIR at the folder that holds it"
        )
    manifest = ExportManifest(**json.loads(manifest_path.read_text()))
    with data_path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    return records, manifest


def _atomic_write(path: Path, text: str) -> None:
    # A reader (or a run killed mid-write) never sees half a file.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
