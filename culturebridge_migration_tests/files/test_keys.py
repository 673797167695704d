"""Storage keys: Bubble's own host and path where that is unambiguous, a hashed name where it is not."""

from __future__ import annotations

import pytest

from culturebridge_migration.files.keys import storage_key


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("//s3.amazonaws.com/appforest_uf/f1690001/photo.jpg", "s3.amazonaws.com/appforest_uf/f1690001/photo.jpg"),
        (
            "https://abc123.cdn.bubble.io/f1699999999999x123/name.pdf",
            "abc123.cdn.bubble.io/f1699999999999x123/name.pdf",
        ),
        ("//ABC123.cdn.bubble.io/f1699999999999x123/name.pdf", "abc123.cdn.bubble.io/f1699999999999x123/name.pdf"),
    ],
)
def test_a_plain_bubble_url_keeps_its_host_and_path(url: str, key: str) -> None:
    assert storage_key(url) == key


def test_the_key_does_not_depend_on_the_scheme_bubble_wrote() -> None:
    assert storage_key("//x.cdn.bubble.io/f1/a.pdf") == storage_key("http://x.cdn.bubble.io/f1/a.pdf")


@pytest.mark.parametrize(
    "urls",
    [
        ("//x.cdn.bubble.io/f1/a b.pdf", "//x.cdn.bubble.io/f1/a_b.pdf", "//x.cdn.bubble.io/f1/a%20b.pdf"),
        ("//x.cdn.bubble.io/f1/img.png?w=200", "//x.cdn.bubble.io/f1/img.png?w=400", "//x.cdn.bubble.io/f1/img.png"),
        ("//x.cdn.bubble.io/f1/r%C3%A9sum%C3%A9.pdf", "//x.cdn.bubble.io/f1/r_sum_.pdf"),
        ("//x.cdn.bubble.io/f1/..", "//x.cdn.bubble.io/f1/_"),
    ],
)
def test_urls_that_sanitizing_would_merge_get_different_keys(urls: tuple[str, ...]) -> None:
    assert len({storage_key(url) for url in urls}) == len(urls)


def test_an_ambiguous_name_keeps_its_extension_after_the_hash() -> None:
    key = storage_key("//x.cdn.bubble.io/f1/my photo.JPG?v=2")

    folder, name = key.rsplit("/", 1)
    assert folder == "x.cdn.bubble.io/f1"
    assert name.startswith("my_photo~") and name.endswith(".JPG")


def test_the_same_url_always_gets_the_same_key() -> None:
    url = "//x.cdn.bubble.io/f1/my photo.jpg?v=2"

    assert storage_key(url) == storage_key(url)


@pytest.mark.parametrize(
    "url",
    [
        "//x.cdn.bubble.io/f1/.htaccess",
        "//x.cdn.bubble.io/f1/../../etc/passwd",
        "//x.cdn.bubble.io",
        "//x.cdn.bubble.io/f1/" + "n" * 300 + ".pdf",
        "//x.cdn.bubble.io/f1//a.pdf",
    ],
)
def test_no_key_has_a_hidden_empty_or_overlong_segment(url: str) -> None:
    segments = storage_key(url).split("/")

    assert len(segments) >= 2
    assert all(segment and not segment.startswith(".") and len(segment) <= 140 for segment in segments)
