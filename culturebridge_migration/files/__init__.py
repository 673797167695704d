"""Copies every file Bubble hosts (profile photos, resource files) into storage the team owns.

`open_storage` opens where they go (a folder or an S3-compatible bucket), `BubbleFileMatcher` says
which URLs are Bubble's (both configured by the `files` resource); `find_file_refs` finds them in a table's rows; `sync_files` copies those not held yet
with a `FileCopier` and records each in `{migration}.files` (`ensure_files_table` creates it).
No Dagster here: the `files/*` assets wire it in.
"""

from culturebridge_migration.files.bookkeeping import (
    FileRow,
    copied_files,
    ensure_files_table,
    file_rows,
    save_file_results,
)
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.keys import storage_key
from culturebridge_migration.files.progress import CopyProgress
from culturebridge_migration.files.storage import (
    FileStorage,
    FileStorageError,
    LocalFolderStorage,
    ObjectStoreStorage,
    open_storage,
    s3_storage,
)
from culturebridge_migration.files.sync import CopyPlan, FilesSummary, plan_copies, sync_files
from culturebridge_migration.files.types import CopyResult, CopyStatus, FileRef
from culturebridge_migration.files.urls import DEFAULT_FILE_HOST_PATTERNS, BubbleFileMatcher, find_file_refs

__all__ = [
    "DEFAULT_FILE_HOST_PATTERNS",
    "BubbleFileMatcher",
    "CopyPlan",
    "CopyProgress",
    "CopyResult",
    "CopyStatus",
    "FileCopier",
    "FileRef",
    "FileRow",
    "FileStorage",
    "FileStorageError",
    "FilesSummary",
    "LocalFolderStorage",
    "ObjectStoreStorage",
    "copied_files",
    "ensure_files_table",
    "file_rows",
    "find_file_refs",
    "open_storage",
    "plan_copies",
    "s3_storage",
    "save_file_results",
    "storage_key",
    "sync_files",
]
