"""Pages of an export in progress, kept on disk so a killed export resumes where it stopped.

One JSON line per finished page, appended and flushed as soon as the page arrived (after its
passwords were hashed: no plain text ever lands here). A torn last line from a kill is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from culturebridge_migration.sources.export_store import open_for_writing


@dataclass(frozen=True)
class SavedPage:
    cursor: int
    total: int
    results: list[dict]


class PageCheckpoint:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def pages(self, search: str) -> dict[int, SavedPage]:
        """Finished pages of the search identified by `search`, by cursor."""
        if not self.path.exists():
            return {}
        found: dict[int, SavedPage] = {}
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a kill cut short; that page is fetched again
                if entry.get("search") == search:
                    found[entry["cursor"]] = SavedPage(entry["cursor"], entry["total"], entry["results"])
        return found

    def save(self, search: str, cursor: int, total: int, results: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"search": search, "cursor": cursor, "total": total, "results": results}, ensure_ascii=False)
        with open_for_writing(self.path, "a") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
