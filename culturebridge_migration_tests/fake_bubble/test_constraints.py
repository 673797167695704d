"""Every constraint type of Bubble's Data API on the local server, and Bubble's answers to bad ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from culturebridge_migration.fake_bubble import FakeBubble

BERLIN = {"address": "Berlin, Germany", "lat": 52.52, "lng": 13.405}
POTSDAM = {"address": "Potsdam, Germany", "lat": 52.39, "lng": 13.06}  # ~27 km (17 miles) from Berlin
PARIS = {"address": "Paris, France", "lat": 48.8566, "lng": 2.3522}
USER_1, USER_2 = "1700000000000x100000000000000001", "1700000000000x100000000000000002"


def coach(n: int, **fields: object) -> dict:
    return {"_id": f"c{n}", "Created Date": f"2025-01-0{n}T00:00:00.000Z", **fields}


COACHES = [
    coach(
        1,
        Name="Ana Lima",
        Bio="Helps with visas and housing",
        Rate=40,
        Since="2024-01-10T09:00:00.000Z",
        Verified=True,
        Languages=["English", "German"],
        Clients=[USER_1, USER_2],
        Office=BERLIN,
    ),
    coach(
        2,
        Name="Bruno Okafor",
        Bio="Careers coaching for newcomers",
        Rate=120,
        Since="2024-06-01T00:00:00.000Z",
        Verified=False,
        Languages=[],
        Clients=[USER_2],
        Office=POTSDAM,
    ),
    coach(3, Name="Chen Tanaka", Rate=75.5, Since="2025-02-01T00:00:00.000Z", Languages=["Japanese"], Office=PARIS),
    coach(4, Name="Dalia"),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBubble]:
    users = [{"_id": USER_1}, {"_id": USER_2}]
    with FakeBubble({"coach": COACHES, "user": users}, test_data={"coach": COACHES[:1]}) as server:
        yield server


def c(key: str, constraint_type: str, value: object = None) -> dict:
    return {"key": key, "constraint_type": constraint_type, **({"value": value} if value is not None else {})}


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (c("Name", "equals", "Ana Lima"), ["c1"]),
        (c("Rate", "equals", 75.5), ["c3"]),
        (c("Verified", "equals", False), ["c2"]),
        (c("Since", "equals", "2024-06-01T00:00:00Z"), ["c2"]),  # the same instant written otherwise
        (c("Rate", "not equal", 40), ["c2", "c3", "c4"]),  # an empty field is not equal to anything
        (c("Bio", "is_empty"), ["c3", "c4"]),
        (c("Bio", "is_not_empty"), ["c1", "c2"]),
        (c("Bio", "text contains", "visa"), ["c1"]),  # whole words: "visas" is the same stem
        (c("Bio", "text contains", "COACH"), ["c2"]),  # "coaching", any case
        (c("Bio", "text contains", "vis"), []),  # a partial word is not a stem
        (c("Bio", "text contains", "housing visas"), ["c1"]),  # every word
        (c("Bio", "not text contains", "visa"), ["c2", "c3", "c4"]),
        (c("Rate", "greater than", 50), ["c2", "c3"]),
        (c("Rate", "less than", 100), ["c1", "c3"]),
        (c("Name", "greater than", "Bz"), ["c3", "c4"]),  # text compares too
        (c("Since", "greater than", "2024-03-01T00:00:00.000Z"), ["c2", "c3"]),
        (c("Since", "less than", 1717200000000), ["c1"]),  # a date as epoch milliseconds
        (c("Created Date", "greater than", "2025-01-02T12:00:00.000Z"), ["c3", "c4"]),
        (c("Rate", "in", [40, 120]), ["c1", "c2"]),
        (c("Languages", "in", ["German", "French"]), ["c1"]),  # a list field is in when an entry is
        (c("Name", "not in", ["Ana Lima", "Dalia"]), ["c2", "c3"]),
        (c("_id", "in", ["c2", "c4"]), ["c2", "c4"]),
        (c("Languages", "contains", "Japanese"), ["c3"]),
        (c("Clients", "contains", USER_2), ["c1", "c2"]),
        (c("Languages", "not contains", "English"), ["c2", "c3", "c4"]),
        (c("Languages", "empty"), ["c2", "c4"]),
        (c("Languages", "not empty"), ["c1", "c3"]),
        (c("Office", "geographic_search", {"range": 30, "origin_address": "Berlin, Germany"}), ["c1", "c2"]),
        (c("Office", "geographic_search", {"range": 20, "origin_address": BERLIN, "unit": "km"}), ["c1"]),
        (c("Office", "geographic_search", {"range": 10, "origin_address": "48.85,2.35"}), ["c3"]),
    ],
)
def test_every_constraint_type_selects_what_bubbles_manual_says(
    fake: FakeBubble, search_ids: Callable[..., list[str]], constraint: dict, expected: list[str]
) -> None:
    assert search_ids(fake.url, "coach", [constraint], sort_field="Created Date") == expected


def test_constraints_together_must_all_hold(fake: FakeBubble, search_ids: Callable[..., list[str]]) -> None:
    both = [c("Rate", "greater than", 30), c("Verified", "equals", True)]
    assert search_ids(fake.url, "coach", both) == ["c1"]


def test_version_test_searches_its_own_database(fake: FakeBubble, search_ids: Callable[..., list[str]]) -> None:
    assert search_ids(fake.test_url, "coach", [c("Rate", "less than", 1000)]) == ["c1"]


# -- what Bubble refuses --------------------------------------------------------------------------
def error(response: requests.Response) -> tuple[int, dict]:
    return response.status_code, response.json()


def test_an_unknown_constraint_type_is_answered_400_in_bubbles_error_body(
    fake: FakeBubble, api_get: Callable[..., requests.Response]
) -> None:
    status, body = error(api_get(fake.url, "/obj/coach", constraints=[c("Rate", "between", [1, 2])]))
    assert (status, body["statusCode"], body["body"]["status"]) == (400, 400, "INVALID_DATA")
    assert body["body"]["message"].startswith("Unrecognized constraint type 'between'")


def test_a_constraint_on_a_field_the_type_lacks_is_answered_404_field_not_found(
    fake: FakeBubble, api_get: Callable[..., requests.Response]
) -> None:
    status, body = error(api_get(fake.url, "/obj/coach", constraints=[c("Nickname", "equals", "x")]))
    assert status == 404
    assert body == {
        "statusCode": 404,
        "body": {"status": "NOT_FOUND", "message": "Field not found Nickname for type coach"},
    }


def test_a_field_the_meta_declares_may_be_constrained_though_no_thing_has_it(
    search_ids: Callable[..., list[str]],
) -> None:
    meta = {
        "get": ["coach"],
        "types": {
            "coach": {"display": "Coach", "fields": [{"id": "nickname_text", "display": "Nickname", "type": "text"}]}
        },
    }
    with FakeBubble({"coach": COACHES}, meta=meta) as fake:
        assert search_ids(fake.url, "coach", [c("Nickname", "is_empty")]) == ["c1", "c2", "c3", "c4"]


@pytest.mark.parametrize(
    ("constraints", "says"),
    [
        ('[{"key": "Rate", "constraint_type": "equals"', "Invalid JSON"),
        ('{"key": "Rate", "constraint_type": "equals", "value": 1}', "JSON array"),
        ('["Rate"]', "JSON array"),
        ('[{"key": "Rate", "value": 1}]', "needs a key and a constraint_type"),
        ([c("Rate", "in", 40)], "list value"),
        ([c("Bio", "text contains", 3)], "text value"),
        ([c("Office", "geographic_search", {"origin_address": "Berlin, Germany"})], "range"),
        ([c("Office", "geographic_search", {"range": 5, "origin_address": "Atlantis"})], "origin_address"),
    ],
)
def test_a_malformed_constraint_is_answered_400_never_a_dropped_connection(
    fake: FakeBubble, api_get: Callable[..., requests.Response], constraints: object, says: str
) -> None:
    status, body = error(api_get(fake.url, "/obj/coach", constraints=constraints))
    assert (status, body["body"]["status"]) == (400, "INVALID_DATA")
    assert says in body["body"]["message"]
