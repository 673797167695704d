"""A copy run in a process of its own, for the kill -9 test: `python -m ... FILES_URL DATABASE_URL FOLDER URLS_JSON RUN_ID`.

FILES_URL is the local Bubble server's files root; URLS_JSON a list of Bubble file URLs, one user each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg

from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.storage import LocalFolderStorage
from culturebridge_migration.files.sync import sync_files
from culturebridge_migration.files.types import FileRef

SCHEMA = "migration"


def main(files_url: str, database_url: str, folder: str, urls_json: str, run_id: str) -> None:
    urls = json.loads(Path(urls_json).read_text())
    refs = [FileRef("users", f"user{n}", "profile_photo_url", url) for n, url in enumerate(urls)]
    storage = LocalFolderStorage(folder)
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        FileCopier(storage, workers=2, files_url=files_url) as copier,
    ):
        summary = sync_files(conn, SCHEMA, refs, copier, run_id=run_id)
    print(json.dumps({"copied": summary.copied, "held": summary.held}))


if __name__ == "__main__":
    main(*sys.argv[1:])
