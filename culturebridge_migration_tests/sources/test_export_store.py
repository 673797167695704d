"""Disk trouble while writing an export names the path it is about."""

from pathlib import Path

import pytest

from culturebridge_migration.sources.export_store import ExportWriter


def test_an_export_folder_that_cannot_be_made_is_named_in_the_error(tmp_path: Path) -> None:
    blocker = tmp_path / "migration_data"
    blocker.write_text("a file where the export folder should be")
    with pytest.raises(OSError, match=rf"cannot write {blocker}"):
        ExportWriter(blocker / "nested", "users")


def test_a_full_disk_is_named_with_the_file_being_written(tmp_path: Path) -> None:
    writer = ExportWriter(tmp_path, "users")
    writer._out.close()
    with Path("/dev/full").open("w", buffering=1) as full:  # every write fails: ENOSPC, as on a full disk
        writer._out = full
        with pytest.raises(OSError, match=r"cannot write .*\.users\.jsonl\..*\.tmp: No space left on device"):
            writer([{"_id": "u1", "note": "x" * 10_000}])
