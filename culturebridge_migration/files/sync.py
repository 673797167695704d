"""A resumable copy: fetch only the files not held yet, and record every result as it comes.

A file is held when `{migration}.files` has it `copied` (same original URL) and storage still has
its object with the recorded size (or, with `verify_checksums`, the recorded sha256: it reads every
held object back, for an audit). So a second run downloads nothing, an incremental sync only new
uploads, and a run after kill -9 only what the killed one had not recorded: results are committed in
small batches while the copy goes on. `missing` and `failed` files are asked for again each run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import chain
from types import TracebackType

import psycopg

from culturebridge_migration.files.bookkeeping import copied_files, save_file_results
from culturebridge_migration.files.content import image_links
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.storage import FileStorage, sha256_of
from culturebridge_migration.files.types import CopyResult, FileRef

_BATCH_ROWS = 100
_BATCH_SECONDS = 1.0  # with slow downloads, a batch is saved at least this often


@dataclass(frozen=True)
class CopyPlan:
    to_copy: list[str]  # distinct original URLs, in first-seen order
    held: dict[str, CopyResult]  # original URL -> its stored copy


@dataclass
class FilesSummary:
    copied: int = 0  # downloaded and stored by this run
    held: int = 0  # already stored by an earlier run
    missing: int = 0
    failed: int = 0
    bytes_copied: int = 0
    rows_written: int = 0
    public_urls: dict[str, str] = field(default_factory=dict)  # original URL -> URL for Phase 2, every stored file

    def add(self, url: str, result: CopyResult, *, held: bool) -> None:
        if result.copied:
            self.public_urls[url] = result.public_url or ""
        if held:
            self.held += 1
        elif result.status == "copied":
            self.copied += 1
            self.bytes_copied += result.bytes or 0
        elif result.status == "missing":
            self.missing += 1
        else:
            self.failed += 1


def plan_copies(
    urls: Iterable[str], recorded: Mapping[str, CopyResult], storage: FileStorage, *, verify_checksums: bool = False
) -> CopyPlan:
    """Which URLs need a download, given what the bookkeeping `recorded` as copied."""
    distinct = list(dict.fromkeys(urls))
    # One listing instead of a request per file; skipped on a first run, when nothing is recorded.
    stored = storage.stored_sizes() if any(url in recorded for url in distinct) else {}
    plan = CopyPlan([], {})
    for url in distinct:
        previous = recorded.get(url)
        if previous is not None and _still_stored(previous, stored, storage, verify_checksums):
            # The public base URL may have been reconfigured since; the key has not moved.
            plan.held[url] = replace(previous, public_url=storage.public_url(previous.key))
        else:
            plan.to_copy.append(url)
    return plan


def _still_stored(previous: CopyResult, stored: Mapping[str, int], storage: FileStorage, verify: bool) -> bool:
    if stored.get(previous.key) != previous.bytes:
        return False
    return not verify or sha256_of(storage.read(previous.key)) == previous.sha256


def sync_files(
    conn: psycopg.Connection,
    migration_schema: str,
    refs: Iterable[FileRef],
    copier: FileCopier,
    *,
    run_id: str,
    verify_checksums: bool = False,
) -> FilesSummary:
    """Copy what is not held yet and record a row per reference. `conn` must not be inside a transaction.

    Every distinct URL is downloaded at most once, however many records link it. `{migration}.files`
    must exist (`ensure_files_table`).
    """
    refs_by_url: dict[str, list[FileRef]] = {}
    for ref in refs:
        refs_by_url.setdefault(ref.url, []).append(ref)
    plan = plan_copies(
        refs_by_url,
        copied_files(conn, migration_schema, urls=refs_by_url),
        copier.storage,
        verify_checksums=verify_checksums,
    )
    summary = FilesSummary()
    with _BatchWriter(conn, migration_schema, run_id, summary) as writer:
        for url, result in plan.held.items():
            writer.add(refs_by_url[url], result)
            summary.add(url, result, held=True)
        for url, result in copier.copy(plan.to_copy, images=image_links(chain(*refs_by_url.values()))):
            writer.add(refs_by_url[url], result)
            summary.add(url, result, held=False)
    return summary


class _BatchWriter:
    """Saves results in small committed batches, so a killed run loses at most the last second's."""

    def __init__(self, conn: psycopg.Connection, migration_schema: str, run_id: str, summary: FilesSummary) -> None:
        self.conn, self.migration_schema, self.run_id, self.summary = conn, migration_schema, run_id, summary
        self._pending: list[tuple[FileRef, CopyResult]] = []
        self._last_flush = time.monotonic()

    def add(self, refs: Iterable[FileRef], result: CopyResult) -> None:
        self._pending.extend((ref, result) for ref in refs)
        if len(self._pending) >= _BATCH_ROWS or time.monotonic() - self._last_flush >= _BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with self.conn.transaction():
                self.summary.rows_written += save_file_results(
                    self.conn, self.migration_schema, self._pending, self.run_id
                )
            self._pending.clear()
        self._last_flush = time.monotonic()

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # Results finished before a storage error or an interrupt are true: keep them. Not after a
        # database error, which left nothing to write them with.
        if not isinstance(exc, psycopg.Error):
            self.flush()
