"""The local Bubble server takes writes as Bubble's Data API does: create, bulk create, modify, replace, delete."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
import requests

from culturebridge_migration.fake_bubble import FakeBubble

KEY = "test-key"
POST = {
    "_id": "1700000000000x1",
    "Created Date": "2025-01-01T00:00:00.000Z",
    "Modified Date": "2025-01-01T00:00:00.000Z",
    "Created By": "admin_user_app",
    "Title": "first",
    "Tags": ["visa"],
}
BUBBLE_ID = re.compile(r"^\d{13}x\d{18}$")
BUBBLE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def fake() -> Iterator[FakeBubble]:
    with FakeBubble({"post": [POST]}, api_key=KEY) as server:
        yield server


def send(method: str, url: str, body: object = None, *, token: str = KEY, text: str | None = None):
    headers = {"Authorization": f"Bearer {token}"}
    if text is not None:
        return requests.request(
            method, url, data=text.encode(), headers=headers | {"Content-Type": "text/plain"}, timeout=10
        )
    return requests.request(method, url, json=body, headers=headers, timeout=10)


def lines(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


# -- create -----------------------------------------------------------------------------------------
def test_a_create_answers_success_with_a_bubble_shaped_id_and_the_server_dates_the_thing(
    fake: FakeBubble, api_get: Callable[..., requests.Response]
) -> None:
    answer = send("POST", f"{fake.url}/obj/post", {"Title": "new", "Tags": ["jobs"], "Body": None})
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "success" and BUBBLE_ID.match(answer.json()["id"])
    thing = api_get(fake.url, f"/obj/post/{answer.json()['id']}").json()["response"]
    assert (thing["Title"], thing["Tags"], thing["_id"]) == ("new", ["jobs"], answer.json()["id"])
    assert "Body" not in thing  # an empty field is absent, as Bubble serves it
    assert BUBBLE_DATE.match(thing["Created Date"]) and thing["Modified Date"] == thing["Created Date"]
    assert thing["Created By"].startswith("admin_user_")
    searched = api_get(fake.url, "/obj/post", sort_field="Created Date").json()["response"]["results"]
    assert [r["Title"] for r in searched] == ["first", "new"]


@pytest.mark.parametrize("key", ["_id", "Created Date", "Modified Date", "Created By"])
def test_a_create_that_sets_a_field_bubble_owns_is_refused_400_and_stores_nothing(fake: FakeBubble, key: str) -> None:
    answer = send("POST", f"{fake.url}/obj/post", {"Title": "new", key: "1700000000000x9"})
    assert answer.status_code == 400
    assert answer.json()["body"]["status"] == "INVALID_DATA" and key in answer.json()["body"]["message"]
    assert [r["Title"] for r in fake.records("post")] == ["first"]


def test_a_create_of_a_type_the_api_does_not_expose_is_404_and_a_body_not_an_object_400(fake: FakeBubble) -> None:
    missing = send("POST", f"{fake.url}/obj/invoice", {"Title": "x"})
    assert (missing.status_code, missing.json()["body"]["status"]) == (404, "MISSING_DATA")
    assert send("POST", f"{fake.url}/obj/post", ["not", "an", "object"]).status_code == 400


# -- bulk create ------------------------------------------------------------------------------------
def test_a_bulk_create_answers_one_status_per_line_in_order_and_a_bad_line_fails_alone(fake: FakeBubble) -> None:
    body = "\n".join([json.dumps({"Title": "a"}), "{not json", json.dumps({"Title": "b", "_id": "x"}), "[]"])
    answers = lines(send("POST", f"{fake.url}/obj/post/bulk", text=body + "\n"))
    assert [a["status"] for a in answers] == ["success", "error", "error", "error"]
    assert BUBBLE_ID.match(answers[0]["id"]) and all(a["message"] for a in answers[1:])
    assert sorted(r["Title"] for r in fake.records("post")) == ["a", "first"]


def test_a_bulk_create_of_1000_lines_creates_them_all_with_distinct_ids(fake: FakeBubble) -> None:
    body = "\n".join(json.dumps({"Title": f"t{i}"}) for i in range(1000))
    answers = lines(send("POST", f"{fake.url}/obj/post/bulk", text=body))
    assert len({a["id"] for a in answers}) == 1000 and len(fake.records("post")) == 1001


def test_a_bulk_create_of_more_than_1000_lines_is_refused_whole(fake: FakeBubble) -> None:
    body = "\n".join(json.dumps({"Title": f"t{i}"}) for i in range(1001))
    answer = send("POST", f"{fake.url}/obj/post/bulk", text=body)
    assert (answer.status_code, answer.json()["body"]["status"]) == (400, "INVALID_DATA")
    assert len(fake.records("post")) == 1


# -- modify, replace, delete --------------------------------------------------------------------------
def test_a_patch_changes_only_the_fields_sent_clears_a_null_and_moves_the_modified_date(
    fake: FakeBubble, api_get: Callable[..., requests.Response]
) -> None:
    answer = send("PATCH", f"{fake.url}/obj/post/{POST['_id']}", {"Body": "hello", "Tags": None})
    assert (answer.status_code, answer.content) == (204, b"")
    thing = api_get(fake.url, f"/obj/post/{POST['_id']}").json()["response"]
    assert (thing["Title"], thing["Body"], "Tags" in thing) == ("first", "hello", False)
    assert thing["Created Date"] == POST["Created Date"] and thing["Modified Date"] > POST["Modified Date"]
    second = send("PATCH", f"{fake.url}/obj/post/{POST['_id']}", {"Body": "again"})
    assert second.status_code == 204
    assert api_get(fake.url, f"/obj/post/{POST['_id']}").json()["response"]["Modified Date"] > thing["Modified Date"]


def test_a_put_replaces_every_settable_field_and_keeps_what_bubble_owns(
    fake: FakeBubble, api_get: Callable[..., requests.Response]
) -> None:
    assert send("PUT", f"{fake.url}/obj/post/{POST['_id']}", {"Body": "only this"}).status_code == 204
    thing = api_get(fake.url, f"/obj/post/{POST['_id']}").json()["response"]
    assert {k: v for k, v in thing.items() if k != "Modified Date"} == {
        "_id": POST["_id"],
        "Created Date": POST["Created Date"],
        "Created By": POST["Created By"],
        "Body": "only this",
    }


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_change_that_sets_a_field_bubble_owns_is_refused_400(fake: FakeBubble, method: str) -> None:
    answer = send(method, f"{fake.url}/obj/post/{POST['_id']}", {"Modified Date": "2030-01-01T00:00:00.000Z"})
    assert (answer.status_code, answer.json()["body"]["status"]) == (400, "INVALID_DATA")
    assert fake.records("post") == [POST]


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_a_change_of_an_unknown_id_is_bubbles_missing_object_404(fake: FakeBubble, method: str) -> None:
    answer = send(method, f"{fake.url}/obj/post/1700000000000x9", {"Title": "x"})
    assert answer.status_code == 404
    assert answer.json()["body"] == {
        "status": "MISSING_DATA",
        "message": "Missing object of type post: object with id 1700000000000x9 does not exist",
    }


def test_a_delete_answers_204_and_the_thing_is_gone(
    fake: FakeBubble, api_get: Callable[..., requests.Response]
) -> None:
    answer = send("DELETE", f"{fake.url}/obj/post/{POST['_id']}")
    assert (answer.status_code, answer.content) == (204, b"")
    assert api_get(fake.url, f"/obj/post/{POST['_id']}").status_code == 404
    assert api_get(fake.url, "/obj/post").json()["response"]["results"] == []


# -- what every request meets -----------------------------------------------------------------------
def test_writes_need_the_api_key_and_meet_the_armed_faults(fake: FakeBubble) -> None:
    assert send("POST", f"{fake.url}/obj/post", {"Title": "x"}, token="wrong").status_code == 401
    fake.add_fault("429", bubble_type="post", retry_after=2)
    limited = send("POST", f"{fake.url}/obj/post/bulk", text=json.dumps({"Title": "x"}))
    assert (limited.status_code, limited.headers.get("Retry-After")) == (429, "2")
    fake.add_fault("500", bubble_type="post")
    assert send("DELETE", f"{fake.url}/obj/post/{POST['_id']}").status_code == 500
    assert fake.records("post") == [POST]  # refused before anything was written
    assert [(r.method, r.bubble_type, r.status) for r in fake.requests] == [
        ("POST", "post", 401),
        ("POST", "post", 429),
        ("DELETE", "post", 500),
    ]


def test_writes_to_version_test_change_only_its_database(fake: FakeBubble) -> None:
    fake.put("post", POST, test=True)
    created = send("POST", f"{fake.test_url}/obj/post", {"Title": "draft"})
    assert created.status_code == 201
    assert send("DELETE", f"{fake.test_url}/obj/post/{POST['_id']}").status_code == 204
    assert [r["Title"] for r in fake.records("post", test=True)] == ["draft"]
    assert fake.records("post") == [POST]


# -- a field the type lacks ---------------------------------------------------------------------------
def meta(*fields: str) -> dict:
    described = [{"id": f"{f.lower()}_text", "display": f, "type": "text"} for f in fields]
    return {"get": ["post"], "types": {"post": {"display": "Post", "fields": described}}, "app_data": {}}


def test_with_its_meta_given_the_server_refuses_a_write_to_a_field_the_type_lacks() -> None:
    with FakeBubble({"post": [POST]}, api_key=KEY, meta=meta("Title", "Tags")) as server:
        refused = send("POST", f"{server.url}/obj/post", {"Title": "new", "phase2_id": "7"})
        assert (refused.status_code, refused.json()["body"]["status"]) == (400, "INVALID_DATA")
        assert "phase2_id" in refused.json()["body"]["message"]
        body = "\n".join(json.dumps(line) for line in [{"Title": "a"}, {"phase2_id": "8"}])
        assert [a["status"] for a in lines(send("POST", f"{server.url}/obj/post/bulk", text=body))] == [
            "success",
            "error",
        ]
        assert send("PATCH", f"{server.url}/obj/post/{POST['_id']}", {"phase2_id": "1"}).status_code == 400
    with FakeBubble({"post": [POST]}, api_key=KEY, meta=meta("Title", "Tags", "phase2_id")) as server:
        assert send("POST", f"{server.url}/obj/post", {"Title": "new", "phase2_id": "7"}).status_code == 201


def test_without_a_given_meta_the_server_takes_any_field_as_a_new_one(fake: FakeBubble) -> None:
    assert send("POST", f"{fake.url}/obj/post", {"Title": "new", "phase2_id": "7"}).status_code == 201


def test_a_patch_or_put_outside_the_data_api_is_answered_404(fake: FakeBubble) -> None:
    root = fake.url.removesuffix("/api/1.1")
    for method, url in [("PATCH", f"{root}/_fake/records/post/x"), ("PUT", f"{fake.url}/meta")]:
        answer = send(method, url, {})
        assert (answer.status_code, answer.json()["body"]["status"]) == (404, "NOT_FOUND")
