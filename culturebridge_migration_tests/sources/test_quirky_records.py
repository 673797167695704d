"""Records our generator never makes, exported over HTTP as Bubble serves them: each one reaches the export file.

A record without an _id, with a list as _id, without a Created Date, or with a lone UTF-16 surrogate
once stopped the whole export (KeyError, TypeError, UnicodeEncodeError for every type). Now each is
written to the file as it came, and the load rejects it with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.export_run import ExportPlan, TypeExport, export_types
from culturebridge_migration.sources.export_store import read_export
from culturebridge_migration.sources.source import ApiSource

T0 = "2025-11-05T14:03:22.120Z"


def post(bubble_id: object, **fields: object) -> dict:
    return {"_id": bubble_id, "Created Date": T0, "Modified Date": T0, "Title": "Hi", "Author": "1x1", **fields}


QUIRKS = [
    post("1x1", Body="fine"),
    {k: v for k, v in post("ignored").items() if k != "_id"},
    post(["1x2", "1x3"]),
    {k: v for k, v in post("1x4").items() if k != "Created Date"},
    post("1x5", Body="broken \ud800 text"),
    post("1x6", Body="nul\x00 inside"),
]


def test_every_quirky_record_lands_in_the_export_file_as_bubble_sent_it(
    serve: Callable[..., FakeBubble], tmp_path: Path
) -> None:
    with serve({"post": QUIRKS}) as fake:
        src = ApiSource(BubbleClient(fake.url, "test-api-key", backoff=0), "test")
        events = list(export_types(src, [ExportPlan(ENTITIES["posts"])], tmp_path, "run-1", poll_seconds=0.05))
    (export,) = [e for e in events if isinstance(e, TypeExport)]
    records, manifest = read_export(tmp_path, "posts")
    assert manifest.complete and len(records) == len(QUIRKS) == export.manifest.exported
    assert sorted(map(repr, records)) == sorted(map(repr, QUIRKS))  # each as Bubble sent it
    bodies = {r["_id"]: r.get("Body") for r in records if isinstance(r.get("_id"), str)}
    assert bodies["1x5"] == "broken \ud800 text"  # the surrogate survives the file, escaped as JSON
    assert bodies["1x6"] == "nul\x00 inside"
