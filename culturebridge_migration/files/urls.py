"""Which values are files Bubble hosts, and the references to them in a table's rows.

A pattern is a host glob with an optional path prefix: `s3.amazonaws.com/appforest_uf/` (Bubble's
legacy S3 bucket, shared with other S3 users, hence the prefix) or `*.cdn.bubble.io` (any app's CDN
host). Apps served through another CDN or an image proxy add their own patterns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
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
        return self.allows(parts.hostname, parts.path)

    def allows(self, host: str, path: str) -> bool:
        """Whether a (lower-case) host and a path are under one of the patterns; the copy checks each hop with it."""
        return any(fnmatchcase(host, pattern) and path.startswith(prefix) for pattern, prefix in self._rules)


def _parse_pattern(pattern: str) -> tuple[str, str]:
    host, slash, path = pattern.strip().removeprefix("https://").removeprefix("//").partition("/")
    if not host:
        raise ValueError(f"file host pattern {pattern!r} has no host; write it like 's3.amazonaws.com/appforest_uf/'")
    return host.lower(), slash + path


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
