"""Which values are Bubble's files, and the references to them in a table's rows."""

from __future__ import annotations

import pytest

from culturebridge_migration.files.types import FileRef
from culturebridge_migration.files.urls import BubbleFileMatcher, find_file_refs


@pytest.mark.parametrize(
    "value",
    [
        "//s3.amazonaws.com/appforest_uf/f1690001/photo.jpg",
        "https://s3.amazonaws.com/appforest_uf/f1690001/photo.jpg",
        "//abc123.cdn.bubble.io/f1699999999999x123/name.pdf",
        " https://ABC123.cdn.bubble.io/f1/name.pdf ",
    ],
)
def test_the_default_patterns_match_bubbles_file_urls(value: str) -> None:
    assert BubbleFileMatcher()(value)


@pytest.mark.parametrize(
    "value",
    [
        "//s3.amazonaws.com/other-bucket/photo.jpg",  # someone else's S3 bucket
        "https://cdn.bubble.io.evil.example/f1/x.pdf",
        "https://example.org/photo.jpg",
        "ftp://abc.cdn.bubble.io/f1/x.pdf",
        "",
        None,
        42,
    ],
)
def test_other_values_are_not_bubble_files(value: object) -> None:
    assert not BubbleFileMatcher()(value)


def test_configured_patterns_replace_the_defaults() -> None:
    matcher = BubbleFileMatcher(["d1muf25xaso8hp.cloudfront.net/", "files.example.org/bubble/"])

    assert matcher("https://d1muf25xaso8hp.cloudfront.net/f1/a.png")
    assert matcher("//files.example.org/bubble/f1/a.png")
    assert not matcher("//files.example.org/other/a.png")
    assert not matcher("//s3.amazonaws.com/appforest_uf/f1/a.png")


def test_a_pattern_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="has no host"):
        BubbleFileMatcher(["/appforest_uf/"])


def test_refs_are_found_in_the_named_columns_lists_included() -> None:
    rows = [
        {
            "bubble_id": "1x1",
            "profile_photo_url": "//s3.amazonaws.com/appforest_uf/f1/a.jpg",
            "bio": "//x.cdn.bubble.io/f/b",
        },
        {"bubble_id": "1x2", "profile_photo_url": None},
        {"bubble_id": "1x3", "profile_photo_url": ["//x.cdn.bubble.io/f2/c.png", "https://example.org/d.png"]},
    ]

    refs = list(find_file_refs("users", rows, ["profile_photo_url"], BubbleFileMatcher()))

    assert refs == [
        FileRef("users", "1x1", "profile_photo_url", "//s3.amazonaws.com/appforest_uf/f1/a.jpg"),
        FileRef("users", "1x3", "profile_photo_url", "//x.cdn.bubble.io/f2/c.png"),
    ]
