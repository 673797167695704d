"""Both storages keep every object whole or not at all, and say where it is served."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from culturebridge_migration.files.storage import (
    FileStorage,
    LocalFolderStorage,
    ObjectStoreStorage,
    open_storage,
    public_link_problem,
    s3_storage,
    sha256_of,
)

KEY = "s3.amazonaws.com/appforest_uf/f1690001/photo.jpg"


class DownloadBroke(Exception):
    pass


def broken_after(first: bytes) -> Iterator[bytes]:
    yield first
    raise DownloadBroke("connection dropped mid-body")


def test_a_written_object_reads_back_byte_identical(storage: FileStorage) -> None:
    chunks = [bytes([n]) * 70_000 for n in range(5)]
    storage.write(KEY, iter(chunks), content_type="image/jpeg", size=None)

    assert sha256_of(storage.read(KEY)) == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert storage.stored_sizes() == {KEY: 350_000}


def test_a_file_whose_size_is_known_is_stored_whole_too(storage: FileStorage) -> None:
    storage.write(KEY, iter([b"abc", b"def"]), content_type="image/jpeg", size=6)

    assert b"".join(storage.read(KEY)) == b"abcdef"


def test_a_write_whose_chunks_fail_raises_their_error_and_leaves_nothing_under_the_key(storage: FileStorage) -> None:
    with pytest.raises(DownloadBroke):
        storage.write(KEY, broken_after(b"x" * 100_000), content_type="image/jpeg", size=None)

    assert storage.stored_sizes() == {}


def test_a_failed_rewrite_keeps_the_object_already_stored(storage: FileStorage) -> None:
    storage.write(KEY, iter([b"complete"]), content_type="image/jpeg", size=None)

    with pytest.raises(DownloadBroke):
        storage.write(KEY, broken_after(b"half"), content_type="image/jpeg", size=None)

    assert b"".join(storage.read(KEY)) == b"complete"


def test_the_public_url_is_the_configured_base_and_the_key(storage: FileStorage) -> None:
    assert storage.public_url(KEY) == f"https://files.example.org/bubble/{KEY}"


def test_s3_objects_keep_the_content_type_and_live_under_the_prefix(s3_bucket: str, s3_env: dict[str, str]) -> None:
    import obstore

    storage = s3_storage(f"s3://{s3_bucket}/migrated/files", env=s3_env)
    storage.write(KEY, iter([b"jpeg bytes"]), content_type="image/jpeg", size=None)

    whole_bucket = s3_storage(f"s3://{s3_bucket}", env=s3_env)
    assert whole_bucket.stored_sizes() == {f"migrated/files/{KEY}": 10}
    assert obstore.get(storage.store, KEY).attributes["Content-Type"] == "image/jpeg"


def test_s3_without_a_public_base_links_to_the_bucket_on_its_endpoint(s3_bucket: str, s3_env: dict[str, str]) -> None:
    storage = s3_storage(f"s3://{s3_bucket}/migrated", env=s3_env)

    assert storage.public_url(KEY) == f"{s3_env['AWS_ENDPOINT_URL']}/{s3_bucket}/migrated/{KEY}"


def test_s3_on_aws_links_to_the_virtual_hosted_bucket_url() -> None:
    storage = s3_storage("s3://team-files/bubble", env={"AWS_DEFAULT_REGION": "eu-west-1"})

    assert storage.public_url("a/b.pdf") == "https://team-files.s3.eu-west-1.amazonaws.com/bubble/a/b.pdf"


def test_a_local_folder_links_to_its_files_by_default(tmp_path: Path) -> None:
    storage = LocalFolderStorage(tmp_path)

    assert storage.public_url("host/f1/a.pdf") == (tmp_path / "host/f1/a.pdf").resolve().as_uri()


def test_a_local_key_cannot_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="leaves the files folder"):
        LocalFolderStorage(tmp_path / "files").write("../outside.txt", iter([b"x"]), content_type=None, size=None)


def test_open_storage_picks_a_bucket_for_s3_urls_and_a_folder_otherwise(tmp_path: Path) -> None:
    assert isinstance(open_storage("s3://team-files/bubble", env={}), ObjectStoreStorage)
    assert isinstance(open_storage(str(tmp_path)), LocalFolderStorage)


@pytest.mark.parametrize(
    ("target", "public_base_url", "demo", "problem"),
    [
        ("./migration_files", None, True, None),  # the embedded demo: this machine's users only
        ("./migration_files", None, False, "set MIGRATION_FILES_PUBLIC_URL"),
        ("./migration_files", "https://files.example.com", False, None),
        ("./migration_files", "file:///srv/files", False, "set it to the http(s) URL"),
        ("s3://bucket/prefix", None, False, None),  # the bucket's own https URL
    ],
)
def test_copies_in_a_folder_need_a_public_url_unless_phase2_is_the_embedded_demo(
    target: str, public_base_url: str | None, demo: bool, problem: str | None
) -> None:
    found = public_link_problem(target, public_base_url, demo=demo)
    assert (found is None) if problem is None else (problem in (found or ""))
