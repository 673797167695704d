"""The app's schema: from Bubble's /meta when it reads, else from the keys the records carry, saying why."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from culturebridge_migration.sources.schema import app_schema

META = {"get": ["post"], "types": {"post": {"display": "Post", "fields": [{"id": "title_text", "display": "Title"}]}}}
KEYS = {"post": {"Title": 3, "_id": 3}}


def never_asked() -> Mapping[str, Mapping[str, int]]:
    raise AssertionError("the records were read although /meta answered")


def test_a_meta_document_that_reads_is_the_schema_and_no_record_is_read() -> None:
    schema = app_schema(META, "", never_asked, "the exported records")
    assert (schema.source, schema.note) == ("meta", "")
    assert [(f.id, f.display) for f in schema.types["post"].fields] == [("title_text", "Title")]


def test_without_meta_the_fields_are_learned_from_the_records_and_the_note_says_why_and_whence() -> None:
    schema = app_schema(None, "Bubble's /meta answered 404", lambda: KEYS, "the first page of each type")
    assert schema.source == "records"
    assert schema.note == "Bubble's /meta answered 404; fields learned from the first page of each type"
    assert [f.id for f in schema.types["post"].fields] == ["Title"]  # built-ins such as _id are no fields


@pytest.mark.parametrize("document", [{"types": []}, {"get": ["post"], "types": {"post": {"fields": [{}]}}}])
def test_a_meta_document_that_does_not_read_falls_back_to_the_records_saying_so(document: dict) -> None:
    schema = app_schema(document, "", lambda: KEYS, "the exported records")
    assert schema.source == "records"
    assert schema.note.startswith("Bubble's /meta could not be read (")
    assert schema.note.endswith("); fields learned from the exported records")
