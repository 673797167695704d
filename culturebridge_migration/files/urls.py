"""Which values are files Bubble hosts, and the references to them in a table's rows.

A pattern is a host glob with an optional path prefix: `s3.amazonaws.com/appforest_uf/` (Bubble's
legacy S3 bucket, shared with other S3 users, hence the prefix) or `*.cdn.bubble.io` (any app's CDN
host). Apps served through another CDN or an image proxy add their own patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from culturebridge_migration.files.types import FileRef
from culturebridge_migration.mapping.values import normalize_url

DEFAULT_FILE_HOST_PATTERNS = ("s3.amazonaws.com/appforest_uf/", "*.cdn.bubble.io")


class BubbleFileMatcher:
    def __init__(self, patterns: Iterable[str] = DEFAULT_FILE_HOST_PATTERNS) -> None:
        self.patterns = tuple(patterns)
        self._rules = [_parse_pattern(pattern) for pattern in self.patterns]

    def __call__(self, value: object) -> bool:
        """Whether `value` is the URL of a file Bubble stores (protocol-relative URLs included)."""
        if not isinstance(value, str) or not value.strip():
            return False
        parts = urlsplit(normalize_url(value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        return any(fnmatchcase(parts.hostname, host) and parts.path.startswith(path) for host, path in self._rules)


def _parse_pattern(pattern: str) -> tuple[str, str]:
    host, slash, path = pattern.strip().removeprefix("https://").removeprefix("//").partition("/")
    if not host:
        raise ValueError(f"file host pattern {pattern!r} has no host; write it like 's3.amazonaws.com/appforest_uf/'")
    return host.lower(), slash + path


def fetch_through(base_url: str) -> Callable[[str], str]:
    """Fetch Bubble's file `//HOST/PATH` from `{base_url}/HOST/PATH` instead (the local Bubble server's files)."""
    base = base_url.rstrip("/")

    def address(url: str) -> str:
        parts = urlsplit(normalize_url(url))
        return f"{base}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    return address


def find_file_refs(
    entity: str, rows: Iterable[Mapping[str, object]], columns: Sequence[str], matcher: BubbleFileMatcher
) -> Iterator[FileRef]:
    """The Bubble files in `columns` of `rows` (each row with its `bubble_id`); a list value gives one ref per file."""
    for row in rows:
        for column in columns:
            value = row.get(column)
            for url in value if isinstance(value, list | tuple) else [value]:
                if matcher(url):
                    yield FileRef(entity, str(row["bubble_id"]), column, str(url).strip())
