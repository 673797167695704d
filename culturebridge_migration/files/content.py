"""What a downloaded file is, told by its first bytes, and whether its column takes it.

The first bytes decide (the `filetype` library reads the signatures of images, documents, archives,
audio and video), never the Content-Type alone: Bubble's storage answers a private or deleted file
with its login page, and a link can name any server's answer.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from urllib.parse import urlsplit

import filetype

from culturebridge_migration.files.types import FileRef

HEAD_BYTES = 261  # as many as filetype reads
WEB_PAGE = "Bubble answered with a web page: the file is private or gone"
# The file columns that hold pictures, as (table, column); every other URL column takes any file but a web page.
IMAGE_COLUMNS = frozenset({("users", "profile_photo_url")})
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<script")


def image_links(refs: Iterable[FileRef]) -> set[str]:
    """The URLs some image column links: their bytes must be an image."""
    return {ref.url for ref in refs if (ref.entity, ref.column) in IMAGE_COLUMNS}


def sniffed_type(head: bytes) -> str | None:
    kind = filetype.guess(head) if head else None
    return kind.mime if kind else None


def refusal(head: bytes, declared: str | None, *, image: bool) -> str | None:
    """Why the body that starts with `head` is not what the column holds, or None."""
    sniffed = sniffed_type(head)
    if sniffed is None and (_looks_like_html(head) or _media_type(declared) == "text/html"):
        return WEB_PAGE
    if image and not (sniffed or "").startswith("image/"):
        what = sniffed or f"bytes of no known image format ({_media_type(declared) or 'no Content-Type'})"
        return f"the column holds an image but Bubble sent {what}: check the file in Bubble and upload it again"
    return None


def stored_type(head: bytes, declared: str | None, url: str) -> str | None:
    """The content type kept with the copy: the bytes' own, else what Bubble declared, else the extension's."""
    return sniffed_type(head) or declared or mimetypes.guess_type(urlsplit(url).path)[0]


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_HTML_STARTS)


def _media_type(declared: str | None) -> str:
    return (declared or "").split(";", 1)[0].strip().lower()
