"""Records planted by an app's users the evening before cutover, migrated end to end: each one is a reject with
its reason, and every table loads (once, a NUL in an _id stopped the users, a list as an _id the comments, and a
10,000-deep object in one record the whole export)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

pytestmark = pytest.mark.integration
STAMP = "2025-03-02T10:00:00.000Z"


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def _planted(data: dict[str, list[dict]]) -> dict[str, list[dict]]:
    thing = {"Created Date": STAMP, "Modified Date": STAMP}
    email = {"email": {"email": "nul@example.com"}}
    return {
        **data,
        "user": [
            *data["user"],
            {**thing, "_id": "u5\x00", "authentication": email, "Role": "Client"},
            {
                **thing,
                "_id": "u6",
                "authentication": {"email": {"email": "long@example.com"}},
                "Role": "Client",
                "First Name": "A" * 300_000,
            },
        ],
        "clientprofile": [
            *data["clientprofile"],
            {**thing, "_id": "cp2", "User": "u4", "Quiz Answers": "[" * 10_000 + "]" * 10_000},
        ],
        "post": [*data["post"], {**thing, "_id": "po2", "Author": "u1", "Title": "Deep", "Body": _deep(10_000)}],
        "comment": [*data["comment"], {**thing, "_id": ["c2"], "Post": "po1", "Author": "u1", "Body": "listed"}],
        "resource": [*data["resource"], {**thing, "_id": "r2", "Title": "Link", "URL": "javascript:alert(1)"}],
    }


@pytest.fixture
def migrated(real_app: SimpleNamespace, serve: Callable, graph_for: Callable, database_url: str, tmp_path: Path):
    with serve(_planted(real_app.data), field_kinds=real_app.field_kinds) as server:
        graph = graph_for(database_url, tmp_path, server)
        yield graph, graph.materialize()


def test_every_planted_record_is_a_reject_with_its_reason_and_every_table_loads(migrated) -> None:
    graph, result = migrated
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed == [] and result.success
    with psycopg.connect(graph.database_url) as conn:
        rejects = {(e, r) for e, r in conn.execute("SELECT entity, reason FROM migration.rejects")}
        loaded = dict(conn.execute("SELECT entity, loaded FROM migration.entity_runs"))
    assert {
        ("users", "invalid_value"),  # the NUL in its _id
        ("users", "too_long"),
        ("client_profiles", "nested_too_deep"),
        ("posts", "nested_too_deep"),
        ("comments", "invalid_value"),  # the list as its _id
        ("resources", "invalid_value"),  # javascript:
    } <= rejects
    assert loaded["comments"] == 1 and loaded["posts"] == 1 and loaded["users"] == 3
