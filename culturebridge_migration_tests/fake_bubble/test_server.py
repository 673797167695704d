"""The local Bubble server as a whole: version-test, answers to broken requests, the command line."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import requests

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_files
from culturebridge_migration.sources.sample_data import generate_sample

LIVE_POST = {"_id": "1700000000000x1", "Created Date": "2025-01-01T00:00:00.000Z", "Title": "live"}
TEST_POST = {"_id": "1700000000000x2", "Created Date": "2025-01-02T00:00:00.000Z", "Title": "draft"}


def titles(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["Title"] for r in response.json()["response"]["results"]]


# -- version-test -----------------------------------------------------------------------------------
def test_version_test_is_an_empty_database_of_its_own_by_default(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble({"post": [LIVE_POST]}) as fake:
        assert fake.test_url == f"http://127.0.0.1:{fake.port}/version-test/api/1.1"
        missing = api_get(fake.test_url, "/obj/post")
    assert (missing.status_code, missing.json()["body"]["status"]) == (404, "MISSING_DATA")


def test_live_and_version_test_serve_and_change_separate_data(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble({"post": [LIVE_POST]}, test_data={"post": [TEST_POST]}) as fake:
        fake.put("post", {**TEST_POST, "_id": "1700000000000x3", "Title": "second draft"}, test=True)
        fake.delete("post", LIVE_POST["_id"], test=True)  # not in version-test: changes nothing
        assert titles(api_get(fake.url, "/obj/post")) == ["live"]
        assert titles(api_get(fake.test_url, "/obj/post")) == ["draft", "second draft"]
        assert api_get(fake.test_url, f"/obj/post/{TEST_POST['_id']}").json()["response"]["Title"] == "draft"
        assert api_get(fake.url, f"/obj/post/{TEST_POST['_id']}").status_code == 404
        assert [r["Title"] for r in fake.records("post", test=True)] == ["draft", "second draft"]
        assert [r.version for r in fake.requests] == ["live", "test", "test", "live"]


def test_a_thing_missing_by_id_gets_bubbles_missing_object_answer(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble({"post": [LIVE_POST]}) as fake:
        response = api_get(fake.url, "/obj/post/1700000000000x9")
    assert response.json() == {
        "statusCode": 404,
        "body": {
            "status": "MISSING_DATA",
            "message": "Missing object of type post: object with id 1700000000000x9 does not exist",
        },
    }


# -- every request gets an answer -------------------------------------------------------------------
def test_a_request_that_breaks_a_handler_is_answered_500_not_dropped() -> None:
    with FakeBubble({"post": [LIVE_POST]}) as fake:
        root = fake.url.removesuffix("/api/1.1")
        response = requests.post(f"{root}/_fake/records/post", data=b"{not json", timeout=10)
    assert response.status_code == 500
    assert response.json()["body"]["status"] == "SERVER_ERROR"


def test_a_malformed_fault_request_is_answered_400() -> None:
    with FakeBubble() as fake:
        root = fake.url.removesuffix("/api/1.1")
        assert requests.post(f"{root}/_fake/faults", json={"times": 2}, timeout=10).status_code == 400
        assert requests.post(f"{root}/_fake/faults", json={"kind": "explode"}, timeout=10).status_code == 400


# -- python -m culturebridge_migration.fake_bubble ----------------------------------------------------
def first_line(process: subprocess.Popen, timeout: float = 60) -> str:
    """The server's first line, or "" if it does not arrive in time (a buffered print never does)."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        return process.stdout.readline() if selector.select(timeout) else ""


def test_the_server_command_announces_itself_through_a_pipe_and_serves_files_meta_and_version_test(
    tmp_path: Path, api_get: Callable[..., requests.Response]
) -> None:
    (tmp_path / "post.jsonl").write_text(json.dumps(TEST_POST) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe is block-buffered then
    command = [sys.executable, "-m", "culturebridge_migration.fake_bubble", "--port", "0", "--api-key", "test-key"]
    command += ["--users", "20", "--hide-meta", "--test-data-dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = first_line(process)
        match = re.search(r"Bubble Data API on (http://\S+/api/1\.1)", line)
        assert match, f"no address on the first line: {line!r}"
        root = match.group(1).removesuffix("/api/1.1")
        key, content = next(iter(sample_files(generate_sample(20)).items()))
        assert requests.get(f"{root}/_files/{key}", timeout=10).content == content
        assert api_get(match.group(1), "/meta").status_code == 404
        assert titles(api_get(f"{root}/version-test/api/1.1", "/obj/post")) == ["draft"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
