"""The Data API client against the local Bubble server: paging, caps, faults, clear errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES, UNREADABLE_KEY
from culturebridge_migration.mapping.mapper import map_records
from culturebridge_migration.mapping.values import format_bubble_datetime
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleError
from culturebridge_migration.sources.hooks import ExportHooks

KEY = "test-key"
Things = Callable[..., list[dict]]


@pytest.fixture
def things(base_time: datetime) -> Things:
    """`n` posts a minute apart from the base time (`same_created`: all at it), modified a day later."""

    def make(n: int, *, same_created: bool = False) -> list[dict]:
        return [
            {
                "_id": f"{1700000000000 + i}x{i:018d}",
                "Created Date": format_bubble_datetime(base_time if same_created else base_time + timedelta(minutes=i)),
                "Modified Date": format_bubble_datetime(base_time + timedelta(days=1, minutes=i)),
                "Title": f"thing {i}",
            }
            for i in range(n)
        ]

    return make


@pytest.fixture
def server(things: Things) -> Iterator[FakeBubble]:
    with FakeBubble({"post": things(250)}, api_key=KEY) as fake:
        yield fake


def client(server: FakeBubble, **kwargs) -> BubbleClient:
    kwargs.setdefault("backoff", 0)
    kwargs.setdefault("timeout", 2)
    return BubbleClient(server.url, KEY, **kwargs)


def pages_asked(server: FakeBubble) -> list[int]:
    return [r.cursor for r in server.requests if r.bubble_type == "post"]


def test_export_pages_through_every_record_in_created_order(server: FakeBubble) -> None:
    result = client(server).export("post")
    assert [r["Title"] for r in result.records] == [f"thing {i}" for i in range(250)]
    assert (result.announced_total, result.pages) == (250, 3)
    assert sorted(pages_asked(server)) == [0, 100, 200]


def test_a_page_holding_infinity_is_read_the_same_whichever_json_library_requests_found(things: Things) -> None:
    """`requests` decodes with simplejson when it is installed (dlt brings it), which refuses the NaN and
    Infinity that the standard library reads: an app's value must not fail a type on some machines only."""
    records = things(3)
    records[1]["Score"], records[2]["Score"] = math.inf, math.nan
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        result = client(fake).export("post")
    scores = [r.get("Score") for r in result.records]
    assert scores[0] is None and scores[1] == math.inf and math.isnan(scores[2])


def test_page_size_is_capped_at_bubbles_100(server: FakeBubble) -> None:
    assert client(server, page_size=500).page_size == 100
    assert client(server, page_size=40).export("post").pages == 7


def test_search_cap_is_never_taken_as_complete(things: Things) -> None:
    with FakeBubble({"post": things(620)}, api_key=KEY, search_cap=250) as fake:
        result = client(fake, search_cap=250).export("post")
    assert len(result.records) == 620
    assert len({r["_id"] for r in result.records}) == 620
    assert result.announced_total == 620


def test_windows_whose_boundary_splits_records_sharing_a_created_date_count_them_once(
    things: Things, base_time: datetime
) -> None:
    records = things(620)
    for i, record in enumerate(records):  # three records per Created Date, so a window ends mid-group
        record["Created Date"] = format_bubble_datetime(base_time + timedelta(minutes=i // 3))
    with FakeBubble({"post": records}, api_key=KEY, search_cap=250) as fake:
        result = client(fake, search_cap=250, workers=4).export("post")
    assert [r["_id"] for r in result.records] == [r["_id"] for r in records]
    assert (result.announced_total, result.unique_ids) == (620, 620)
    assert not result.notes


def test_modified_after_asks_bubble_only_for_changes(server: FakeBubble, base_time: datetime) -> None:
    since = base_time + timedelta(days=1, minutes=199)
    result = client(server).export("post", ExportHooks(modified_after=since))
    assert [r["Title"] for r in result.records] == [f"thing {i}" for i in range(200, 250)]


@pytest.mark.parametrize("retry_after", [1, None])
def test_rate_limit_is_retried_with_and_without_retry_after(server: FakeBubble, retry_after: int | None) -> None:
    server.add_fault("429", times=2, retry_after=retry_after)
    assert len(client(server).export("post").records) == 250


def test_retry_after_is_waited_out_before_asking_again(server: FakeBubble) -> None:
    server.add_fault("429", times=2, retry_after=1)
    assert len(client(server, workers=1).export("post").records) == 250
    first_page = [r.at for r in server.requests if r.cursor == 0]
    assert len(first_page) == 3
    assert min(b - a for a, b in itertools.pairwise(first_page)) >= 0.9


def test_a_429_storm_outlasting_the_retries_stops_naming_type_page_and_budget(server: FakeBubble) -> None:
    server.add_fault("429", times=1000, retry_after=None)
    with pytest.raises(BubbleError, match=r"type 'post', page at cursor 0.*429.*lower requests_per_minute"):
        client(server, max_retries=3).export("post")
    assert len(server.requests) == 4  # one try and three retries, then it stopped asking


def test_server_errors_and_timeouts_are_retried(server: FakeBubble) -> None:
    server.add_fault("500", times=2, status=503)
    server.add_fault("slow", times=1, seconds=3)
    assert len(client(server, timeout=1).export("post").records) == 250


def test_truncated_and_short_pages_are_asked_again(server: FakeBubble) -> None:
    server.add_fault("truncate", cursor=100)
    server.add_fault("short_page", cursor=200)
    server.add_fault("non_json", cursor=0)
    result = client(server).export("post")
    assert len(result.records) == 250
    assert pages_asked(server).count(100) == 2


def test_a_page_that_stays_broken_stops_with_the_type_and_page(things: Things) -> None:
    with FakeBubble({"post": things(250)}, api_key=KEY) as fake:
        fake.add_fault("truncate", times=10, cursor=100)
        with pytest.raises(BubbleError, match=r"type 'post', page at cursor 100"):
            client(fake).export("post")


def test_wrong_api_key_names_the_fix(server: FakeBubble) -> None:
    with pytest.raises(BubbleError, match="BUBBLE_API_KEY"):
        BubbleClient(server.url, "wrong", backoff=0).export("post")


def test_unknown_type_names_the_fix(server: FakeBubble) -> None:
    with pytest.raises(BubbleError, match="Settings > API"):
        client(server).export("nosuchtype")


def test_a_host_name_that_does_not_resolve_fails_at_once_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    lookups: list[str] = []
    resolve = socket.getaddrinfo

    def counted(host: str, *args: object, **kwargs: object) -> list:
        lookups.append(host)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counted)  # counts the lookups; the real resolver answers
    client = BubbleClient("http://culturebridge-app.invalid/api/1.1", KEY, max_retries=6, backoff=0.01)
    with pytest.raises(BubbleError, match=r"Cannot reach Bubble at http://culturebridge-app\.invalid.*resolve"):
        client.export("post")
    assert lookups == ["culturebridge-app.invalid"]  # asked once: a name that does not resolve will not on retry


def test_a_refused_connection_is_tried_again_twice_not_for_half_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from urllib3.util import connection

    tries: list[object] = []
    create = connection.create_connection

    def counted(address: object, *args: object, **kwargs: object) -> socket.socket:
        tries.append(address)
        return create(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connection, "create_connection", counted)  # the real connect; nothing listens on port 9
    client = BubbleClient("http://127.0.0.1:9/api/1.1", KEY, max_retries=6, backoff=0.01)
    with pytest.raises(BubbleError, match=r"Cannot reach Bubble at http://127\.0\.0\.1:9.*refused"):
        client.export("post")
    assert len(tries) == 3  # the first try and two more: a server that refuses is down or the URL is wrong


@pytest.mark.parametrize(
    "url",
    [
        "not-a-url",
        "APP.bubbleapps.io/api/1.1",
        "ftp://APP.bubbleapps.io/api/1.1",
        "https://",
        "admin:Zq7Secret@APP.bubbleapps.io/api/1.1",  # no scheme: its password must not be shown either
    ],
)
def test_a_bubble_api_url_that_is_not_a_web_address_is_refused_before_any_request_with_the_form_to_write(
    url: str,
) -> None:
    with pytest.raises(BubbleError, match=r"BUBBLE_API_URL is not a web address .*https://APP\.bubbleapps\.io") as err:
        BubbleClient(url, KEY)
    assert "Zq7Secret" not in str(err.value)


def test_unreachable_server_names_the_url() -> None:
    with pytest.raises(BubbleError, match=r"Cannot reach Bubble at http://127\.0\.0\.1:9"):
        BubbleClient("http://127.0.0.1:9/api/1.1", KEY, max_retries=1, backoff=0).export("post")


def test_record_deleted_between_pages_skips_no_other_record(server: FakeBubble) -> None:
    doomed = server.records("post")[5]["_id"]
    pages: list[int] = []

    def delete_after_first_page(results: list[dict]) -> None:
        if not pages:
            server.delete("post", doomed)
        pages.append(len(results))

    result = client(server, workers=1).export("post", ExportHooks(prepare=delete_after_first_page))
    ids = [r["_id"] for r in result.records]
    assert {r["_id"] for r in server.records("post")} <= set(ids)  # the shifted offsets skipped nobody
    # Pages are handed on as they arrive, so the doomed record, read before it was deleted, is kept
    # (the next full run's deletion sweep reports it); each record once.
    assert len(ids) == len(set(ids)) == 250 and doomed in ids
    assert any("changed during the export" in note for note in result.notes)
    assert any("beyond the final total" in note for note in result.notes)


def test_pages_after_the_first_are_fetched_concurrently_in_order(things: Things) -> None:
    with FakeBubble({"post": things(1000)}, api_key=KEY, latency=0.05) as fake:
        result = client(fake, workers=8).export("post")
        in_flight = max(r.in_flight for r in fake.requests)
    assert [r["Title"] for r in result.records] == [f"thing {i}" for i in range(1000)]
    assert sorted(pages_asked(fake)) == list(range(0, 1000, 100))
    assert in_flight > 1


def test_request_budget_spaces_requests(things: Things) -> None:
    with FakeBubble({"post": things(500)}, api_key=KEY) as fake:
        client(fake, workers=4, requests_per_minute=600).export("post")  # one request per 0.1 s
        asked = sorted(r.at for r in fake.requests)
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert len(asked) == 5 and min(gaps) > 0.08


def test_checkpoint_resumes_at_the_first_unfinished_page(server: FakeBubble, tmp_path) -> None:
    from culturebridge_migration.sources.checkpoint import PageCheckpoint

    checkpoint = PageCheckpoint(tmp_path / "post.partial.jsonl")
    server.add_fault("drop", times=50, cursor=200)  # the export dies at its third page
    with pytest.raises(BubbleError):
        client(server, workers=1, max_retries=1).export("post", ExportHooks(checkpoint=checkpoint))
    server.clear_faults()
    server.requests.clear()
    result = client(server, workers=1).export("post", ExportHooks(checkpoint=checkpoint))
    assert pages_asked(server) == [200]
    assert [r["Title"] for r in result.records] == [f"thing {i}" for i in range(250)]
    assert any("resumed" in note for note in result.notes)


def test_key_revoked_mid_run_stops_naming_type_page_and_fix(server: FakeBubble) -> None:
    server.add_fault("unauthorized", times=5, cursor=200)
    with pytest.raises(BubbleError, match=r"type 'post', page at cursor 200.*BUBBLE_API_KEY"):
        client(server, workers=1).export("post")


def test_record_created_during_the_export_is_not_lost(server: FakeBubble, things: Things) -> None:
    newcomer = {**things(251)[-1], "_id": "1800000000000x000000000000000001"}
    added: list[bool] = []

    def create_after_first_page(results: list[dict]) -> None:
        if not added:
            server.put("post", newcomer)
            added.append(True)

    result = client(server, workers=4).export("post", ExportHooks(prepare=create_after_first_page))
    ids = [r["_id"] for r in result.records]
    assert newcomer["_id"] in ids and len(ids) == len(set(ids)) == 251
    assert result.announced_total == 251


def test_count_asks_one_record_and_reads_the_announced_total(server: FakeBubble) -> None:
    since = [{"key": "Created Date", "constraint_type": "greater than", "value": "2025-01-01T01:39:00.000Z"}]
    assert client(server).count("post", since) == 150  # minutes 100..249
    assert [r.limit for r in server.requests] == [1]


def deep_object(levels: int) -> dict:
    """An object nested `levels` deep, built without recursion."""
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_record_nested_ten_thousand_deep_is_a_reject_with_its_position_and_id_and_the_others_export(
    things: Things,
) -> None:
    records = things(250)
    records[137]["Quiz Answers"] = deep_object(10_000)  # planted by an app user the evening before cutover
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        result = client(fake).export("post")
        limits = [r.limit for r in fake.requests if r.bubble_type == "post"]
    assert len(result.records) == result.announced_total == 250
    assert [r["Title"] for i, r in enumerate(result.records) if i != 137] == [
        f"thing {i}" for i in range(250) if i != 137
    ]
    stand_in = result.records[137]
    assert (stand_in["_id"], stand_in["Created Date"]) == (records[137]["_id"], records[137]["Created Date"])
    note = stand_in[UNREADABLE_KEY]
    assert note["field"] == "Quiz Answers" and "position 137" in note["message"] and "64" in note["message"]
    assert 1 in limits  # the page was asked again in halves, down to the one record
    reject = map_records(ENTITIES["posts"], [stand_in]).rejects[0]
    assert (reject.bubble_id, reject.field, reject.reason) == (records[137]["_id"], "Quiz Answers", "nested_too_deep")


def test_a_record_nested_deeper_than_the_limit_but_parseable_is_a_reject_too(
    server: FakeBubble, things: Things
) -> None:
    server.put("post", {**things(1)[0], "_id": "deep", "Body": deep_object(100)})
    (stand_in,) = [r for r in client(server).export("post").records if r["_id"] == "deep"]
    assert stand_in[UNREADABLE_KEY]["field"] == "Body"


def test_credentials_in_the_api_url_are_refused_saying_where_the_key_goes() -> None:
    with pytest.raises(BubbleError, match="BUBBLE_API_KEY") as refused:
        BubbleClient("https://admin:s3cret@app.bubbleapps.io/api/1.1", KEY)
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("bubble_type", ["sales lead", "a/b", "x?y#z", "café"])
def test_a_type_name_is_one_path_segment_whatever_it_holds(bubble_type: str, things: Things) -> None:
    with FakeBubble({bubble_type: things(3)}, api_key=KEY) as fake:
        result = client(fake).export(bubble_type)
        asked = {r.bubble_type for r in fake.requests}
    assert (len(result.records), asked) == (3, {bubble_type})
