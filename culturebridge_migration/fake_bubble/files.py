"""Bubble-hosted files (uploads on `s3.amazonaws.com/appforest_uf/...` or `<hash>.cdn.bubble.io/...`).

Files are keyed by "host/path": scheme, leading `//` and query string dropped, percent-escapes decoded, so
`//s3.amazonaws.com/appforest_uf/f1/a%20b.pdf`, `https://s3.amazonaws.com/appforest_uf/f1/a b.pdf` and
`s3.amazonaws.com/appforest_uf/f1/a b.pdf` name the same file. The server answers them like the storage
behind Bubble does where a downloader can tell: Content-Type, Content-Length, ETag, single byte ranges,
`If-None-Match`, and an S3-style XML body for a missing key.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

FILES_PREFIX = "/_files"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_BUBBLE_FILE_URL = re.compile(r"^(https?:)?//(s3\.amazonaws\.com/appforest_uf/|[^/]+\.cdn\.bubble\.io/)", re.IGNORECASE)


def is_bubble_file_url(value: object) -> bool:
    """Whether a value is a file Bubble stores (`//s3.amazonaws.com/appforest_uf/...`, `//*.cdn.bubble.io/...`)."""
    return isinstance(value, str) and bool(_BUBBLE_FILE_URL.match(value))


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    content_type: str

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.content, usedforsecurity=False).hexdigest()}"'  # S3's ETag of a simple upload


def file_key(url_or_key: str) -> str:
    """'https://HOST/PATH', '//HOST/PATH', 'HOST/PATH' or a served '/_files/HOST/PATH' URL -> 'HOST/PATH'."""
    text = url_or_key.strip()
    if "://" not in text and not text.startswith("//"):
        text = "//" + text.lstrip("/")
    parts = urlsplit(text)
    path = parts.path
    if parts.hostname in ("127.0.0.1", "localhost") and path.startswith(FILES_PREFIX + "/"):
        return file_key(path[len(FILES_PREFIX) + 1 :])  # a URL this server handed out
    return unquote(f"{parts.netloc}{path}")


def content_type_for(key: str) -> str:
    guessed, _ = mimetypes.guess_type(key.rsplit("/", 1)[-1], strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


class FileStore:
    """The files the fake serves; thread-safe."""

    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        """`files` is read on a file's first request, not here: it may generate its bytes on demand
        (`sample.files_for`), and a data set of 70k files would otherwise take a minute to start."""
        self._files: dict[str, StoredFile] = {}
        self._initial: Mapping[str, bytes] = files or {}
        self._initial_keys = {file_key(name): name for name in self._initial}  # URLs or keys, as given
        self._deleted: set[str] = set()
        self._lock = threading.Lock()

    def put(self, url_or_key: str, content: bytes, content_type: str | None = None) -> str:
        key = file_key(url_or_key)
        with self._lock:
            self._files[key] = StoredFile(bytes(content), content_type or content_type_for(key))
            self._deleted.discard(key)
        return key

    def delete(self, url_or_key: str) -> None:
        key = file_key(url_or_key)
        with self._lock:
            self._files.pop(key, None)
            self._deleted.add(key)

    def get(self, key: str) -> StoredFile | None:
        with self._lock:
            if key in self._files or key in self._deleted or key not in self._initial_keys:
                return self._files.get(key)
            content = self._initial[self._initial_keys[key]]
            stored = self._files[key] = StoredFile(bytes(content), content_type_for(key))
            return stored

    def keys(self) -> list[str]:
        with self._lock:
            initial = [k for k in self._initial_keys if k not in self._files and k not in self._deleted]
            return [*self._files, *initial]


class RangeNotSatisfiable(Exception):
    pass


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single `Range: bytes=...` header; None serves the whole file.

    Raises RangeNotSatisfiable where S3 answers 416. Headers it does not understand (several ranges,
    other units) are ignored, as HTTP allows.
    """
    match = _RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable
    return start, end


def missing_key_body(key: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        f"<Message>The specified key does not exist.</Message><Key>{key.split('/', 1)[-1]}</Key></Error>"
    ).encode()
