"""Files on the local Bubble server, and what it was asked for."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from culturebridge_migration.fake_bubble import FakeBubble

JPEG_START = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # start of image, then a JFIF header


def serve_files(
    bubble: FakeBubble, count: int, *, seed: int = 1, host: str = "abc123.cdn.bubble.io"
) -> dict[str, bytes]:
    """`count` files of 1-300 KB on `bubble`, by their Bubble URL (protocol-relative, as Bubble writes them): random
    bytes after a JPEG's first bytes, so a content sniffer takes them for the photos they stand for."""
    rng = random.Random(seed)
    files = {
        f"//{host}/f16999999{n:05d}x{seed}/upload-{n}.jpg": JPEG_START + rng.randbytes(rng.randint(1_000, 300_000))
        for n in range(count)
    }
    for url, content in files.items():
        bubble.put_file(url, content)
    return files


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def downloads(bubble: FakeBubble, *, since: float = 0.0) -> Counter[str]:
    """How often each file was asked for, by the server's "host/path" key, in requests that arrived after `since`
    (a `time.monotonic()` of this process, the server's clock): a killed client's last requests, answered
    after it died, are not counted as the next run's."""
    return Counter(r.file for r in bubble.file_requests() if r.method == "GET" and r.at >= since)
