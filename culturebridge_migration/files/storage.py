"""Storage the team owns for Bubble's files: a local folder, or an S3-compatible bucket through obstore.

Why obstore (the Rust `object_store` crate) rather than boto3 or fsspec/s3fs:
- Streaming uploads: `obstore.put` takes an iterator of chunks, so a download flows to the bucket as
  it arrives; boto3's `upload_fileobj` wants a file-like object (an adapter around the response) and
  s3fs a buffered `open(..., "wb")` file. All three complete a multipart upload only at the end.
- Atomic: a put is visible only once complete, a single PUT or a completed multipart upload; an
  exception from our chunk iterator (a download cut short) aborts the multipart upload, so nothing
  shows under the key. A process killed mid-upload leaves at most an incomplete multipart upload,
  invisible and removed by the bucket's usual "abort incomplete multipart uploads" lifecycle rule.
- Speed: network I/O runs in Rust with the GIL released, so worker threads upload in parallel;
  obstore's own measurements show several times the throughput of fsspec and aioboto3 for many small
  concurrent requests, which is this workload (tens of thousands of 30 KB-5 MB files).
- Weight: one ~16 MB wheel needing only typing-extensions. boto3 brings botocore (~32 MB), s3transfer
  and jmespath; s3fs brings aiobotocore (pinned to narrow botocore versions), aiohttp and fsspec.
- It takes the endpoint, region and keys as plain settings (`s3_storage` reads them from the usual
  AWS variables: AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and works with MinIO, R2 and Ceph as with AWS.
- Memory: an upload holds at most `_PARTS_IN_FLIGHT` parts of `PART_SIZE`, whatever the file's size
  (measured: 4 parallel uploads of 200 MB files add 40 MB, as 50 MB files do).

The local folder is plain Python: each file is written to a hidden temporary file beside its final
path and moved into place with `os.replace`, atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import quote, urlsplit

import obstore
from obstore.store import S3Store

DEFAULT_FILES_DIR = "./migration_files"
PART_SIZE = 5 * 1024 * 1024  # S3's smallest multipart part; also the most a worker buffers before sending
_PARTS_IN_FLIGHT = 2  # per upload: bounds memory at about 2 parts per worker (obstore's default is 12)
_TEMP_SUFFIX = ".partial"
_READ_CHUNK = 1024 * 1024


class FileStorageError(RuntimeError):
    """The storage itself cannot be written or read; the message names it and what to check."""


class FileStorage(Protocol):
    location: str  # where the files go, for messages: a folder or s3://bucket/prefix

    def write(self, key: str, chunks: Iterable[bytes], *, content_type: str | None, size: int | None) -> None:
        """Store `chunks` under `key`, all or nothing. `size` (when known) lets small files skip multipart.

        An exception raised by `chunks` propagates unchanged, and `key` keeps what it held before (if anything).
        """

    def stored_sizes(self) -> dict[str, int]:
        """The size of every object stored, by key."""

    def read(self, key: str) -> Iterator[bytes]:
        """The stored object's bytes, in chunks."""

    def public_url(self, key: str) -> str:
        """The URL Phase 2 holds for the object."""


def public_url(base: str, key: str) -> str:
    return base.rstrip("/") + "/" + quote(key, safe="/~")


def public_link_problem(target: str, public_base_url: str | None, *, demo: bool) -> str | None:
    """Why the links Phase 2 would hold for copied files are not ones its users can open; None: they are.

    A folder's own file:// URL is a path on the migration machine: fine for the embedded demo, never for a
    Phase 2 that real users' browsers reach. A bucket's default URL is its public https one.
    """
    if public_base_url is not None and urlsplit(public_base_url).scheme not in ("http", "https"):
        return f"MIGRATION_FILES_PUBLIC_URL is {public_base_url!r}: set it to the http(s) URL that serves the copies"
    if public_base_url is None and not target.startswith("s3://") and not demo:
        return (
            f"Phase 2 is not the embedded demo, and the copies in the folder {target} would be linked by file:// "
            "paths of this machine, which nobody else can open: set MIGRATION_FILES_PUBLIC_URL to the http(s) URL "
            "that serves that folder, or copy to a bucket (MIGRATION_FILES_URL=s3://bucket/prefix)"
        )
    return None


def sha256_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


class LocalFolderStorage:
    def __init__(self, root: str | Path = DEFAULT_FILES_DIR, *, public_base_url: str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)
        self.public_base_url = public_base_url or self.root.as_uri()

    def write(self, key: str, chunks: Iterable[bytes], *, content_type: str | None, size: int | None) -> None:
        # The content type has no place in a folder; the bookkeeping row keeps it.
        target = self._path(key)
        # Hidden and suffixed, in the same folder (so os.replace never crosses filesystems); keys never
        # have a segment starting with a dot, so a temporary file is never taken for one.
        temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
        try:
            with self._create(temp) as handle:
                for chunk in chunks:
                    self._append(handle, chunk)
            # No fsync: a killed process loses nothing written; after a power cut the next run's size
            # check finds a short file and copies it again.
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):  # never there, or its folder never made: nothing to clean
                temp.unlink()
            raise

    def _create(self, path: Path) -> IO[bytes]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("xb")
        except OSError as exc:
            raise FileStorageError(f"Cannot write files under {self.location}: {exc}") from exc

    def _append(self, handle: IO[bytes], chunk: bytes) -> None:
        # Only the disk's own errors are storage errors: the chunks' errors (a download cut short,
        # requests' exceptions are OSErrors too) must reach the copier as they are.
        try:
            handle.write(chunk)
        except OSError as exc:
            raise FileStorageError(f"Cannot write files under {self.location}: {exc}") from exc

    def stored_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for folder, subfolders, names in os.walk(self.root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            for name in names:
                if not name.startswith("."):
                    path = Path(folder, name)
                    sizes[path.relative_to(self.root).as_posix()] = path.stat().st_size
        return sizes

    def read(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                yield chunk

    def public_url(self, key: str) -> str:
        return public_url(self.public_base_url, key)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} leaves the files folder")
        return path


class ObjectStoreStorage:
    """Any obstore store; `s3_storage` builds one for an S3-compatible bucket."""

    def __init__(self, store: obstore.store.ObjectStore, *, location: str, public_base_url: str) -> None:
        self.store, self.location, self.public_base_url = store, location, public_base_url

    def write(self, key: str, chunks: Iterable[bytes], *, content_type: str | None, size: int | None) -> None:
        attributes = {"Content-Type": content_type} if content_type else None
        # A file known to fit in one part goes up in one PUT (one request instead of three); obstore
        # then gathers it in memory, which is no more than a multipart upload buffers for its part.
        single_put = size is not None and size <= PART_SIZE
        try:
            obstore.put(
                self.store,
                key,
                chunks,
                attributes=attributes,
                use_multipart=not single_put,
                chunk_size=PART_SIZE,
                max_concurrency=_PARTS_IN_FLIGHT,
            )
        except obstore.exceptions.BaseError as exc:
            raise FileStorageError(f"Cannot write {key} to {self.location}: {_first_line(exc)}") from exc

    def stored_sizes(self) -> dict[str, int]:
        try:
            return {meta["path"]: meta["size"] for batch in obstore.list(self.store) for meta in batch}
        except obstore.exceptions.BaseError as exc:
            raise FileStorageError(f"Cannot list {self.location}: {_first_line(exc)}") from exc

    def read(self, key: str) -> Iterator[bytes]:
        for chunk in obstore.get(self.store, key).stream(min_chunk_size=_READ_CHUNK):
            yield bytes(chunk)

    def public_url(self, key: str) -> str:
        return public_url(self.public_base_url, key)


def s3_storage(
    url: str, *, public_base_url: str | None = None, env: Mapping[str, str] = os.environ
) -> ObjectStoreStorage:
    """An S3-compatible bucket from `s3://bucket/prefix`; endpoint, region and keys from the AWS variables in `env`."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"files URL {url!r} is not like s3://bucket/prefix")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = {
        "region": region,
        "endpoint": endpoint,
        "access_key_id": env.get("AWS_ACCESS_KEY_ID"),
        "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
        "token": env.get("AWS_SESSION_TOKEN"),
    }
    store = S3Store(
        bucket,
        prefix=prefix or None,
        config={name: value for name, value in config.items() if value},
        client_options={"allow_http": bool(endpoint and endpoint.startswith("http://"))},  # MinIO, moto
    )
    return ObjectStoreStorage(
        store, location=url, public_base_url=public_base_url or _bucket_url(bucket, prefix, region, endpoint)
    )


def _bucket_url(bucket: str, prefix: str, region: str, endpoint: str | None) -> str:
    """Where a public bucket serves its objects: path-style on a custom endpoint, virtual-hosted on AWS."""
    base = f"{endpoint.rstrip('/')}/{bucket}" if endpoint else f"https://{bucket}.s3.{region}.amazonaws.com"
    return f"{base}/{prefix}" if prefix else base


def open_storage(
    target: str = DEFAULT_FILES_DIR, *, public_base_url: str | None = None, env: Mapping[str, str] = os.environ
) -> FileStorage:
    """A folder path, or `s3://bucket/prefix` for an S3-compatible bucket."""
    if target.startswith("s3://"):
        return s3_storage(target, public_base_url=public_base_url, env=env)
    return LocalFolderStorage(target, public_base_url=public_base_url)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
