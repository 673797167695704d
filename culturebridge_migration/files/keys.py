"""Where a Bubble file is stored: a key derived from its URL alone, so every run agrees on it.

The key is Bubble's own host and path (`s3.amazonaws.com/appforest_uf/f1690001/photo.jpg`). Bubble
puts every upload in a folder of its own (`f<timestamp>x<random>/`), so host + path is unique per
upload and two different files never share a key; one file referenced by many records is stored once.

The path is kept verbatim only when it is unambiguous and safe everywhere a key goes (S3, a local
folder on any OS, a URL): plain ASCII letters, digits and `._-` per segment, no hidden or dot-only
segment, no query string. Otherwise (`my photo.jpg`, `r%C3%A9sum%C3%A9.pdf`, `img.png?w=200`) the
unsafe runs become `_`, and a hash of the whole URL is appended after `~`, because replacing
characters or dropping the query maps different URLs onto one path (`a b.pdf`, `a_b.pdf`; `?w=200`,
`?w=400`). A verbatim key never contains `~`, so the two kinds of keys can never collide either.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

from culturebridge_migration.mapping.values import normalize_url

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SEGMENT = 120  # well under the 255 bytes a file name may have on common filesystems
_HASH_LENGTH = 16  # 64 bits of sha256: no collision among any realistic number of files


def storage_key(url: str) -> str:
    """The stable, collision-free storage key of a Bubble file URL (protocol-relative or not)."""
    normalized = normalize_url(url)
    parts = urlsplit(normalized)
    segments = [parts.netloc.lower(), *parts.path.split("/")[1:]]
    verbatim = len(segments) > 1 and all(_is_verbatim(segment) for segment in segments)
    if verbatim and not parts.query and not parts.fragment:
        return "/".join(segments)
    return _disambiguated([_sanitized(segment) for segment in segments if segment], normalized)


def _is_verbatim(segment: str) -> bool:
    return len(segment) <= _MAX_SEGMENT and _SAFE_SEGMENT.fullmatch(segment) is not None


def _sanitized(segment: str) -> str:
    cleaned = _UNSAFE_RUN.sub("_", unquote(segment)).lstrip(".")[:_MAX_SEGMENT]
    return cleaned or "_"


def _disambiguated(segments: list[str], url: str) -> str:
    """Appends the URL's hash to the file name, before its extension, so the key still ends in `.pdf`."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:_HASH_LENGTH]
    *folders, name = segments if len(segments) > 1 else [*segments, "file"]
    stem, dot, extension = name.rpartition(".")
    if not stem or not dot:
        stem, extension = name, ""
    suffix = f"~{digest}" + (f".{extension}" if extension else "")
    return "/".join([*folders, stem + suffix])
