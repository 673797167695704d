"""`/meta` on the local server: inferred from the data, given whole, hidden, and an id-keyed app's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from culturebridge_migration.fake_bubble import FakeBubble, id_keyed
from culturebridge_migration.fake_bubble.sample import sample_server_args
from culturebridge_migration.sources.sample_data import generate_sample

U1, CP1, B1 = "1700000000000x1", "1700000000000x2", "1700000000000x3"
STAMP = {"Created Date": "2025-01-01T00:00:00.000Z", "Modified Date": "2025-01-02T00:00:00.000Z"}
DATA = {
    "user": [
        {
            "_id": U1,
            **STAMP,
            "Created By": "admin_user_app_test",
            "Slug": "ana",
            "authentication": {"email": {"email": "ana@example.com", "email_confirmed": True}},
            "user_signed_up": True,
            "First Name": "Ana",
            "Role": "Coach",
            "Profile Photo": "//s3.amazonaws.com/appforest_uf/f1/photo.jpg",
        }
    ],
    "coachprofile": [
        {
            "_id": CP1,
            **STAMP,
            "User": U1,
            "Hourly Rate": 40,
            "Expertise": ["Visas", "Housing"],
            "Verified": True,
            "Office": {"address": "Berlin", "lat": 52.52, "lng": 13.405},
            "CV": "//e8a3c0b4.cdn.bubble.io/f1699999999999x123/cv.pdf",
            "Old Notes - deleted": "still here",
        }
    ],
    "booking": [{"_id": B1, **STAMP, "Client": U1, "Coach Profile": CP1, "Session Start": "2025-03-01T10:00:00.000Z"}],
    "payment": [{"_id": "1700000000000x4", **STAMP, "Booking": B1, "Covers": [B1], "Amount": 25.5}],
}
KINDS = {"user": {"Role": "option.os_role"}}


def fields(meta: dict, bubble_type: str) -> list[tuple[str, str, str]]:
    return [(f["id"], f["display"], f["type"]) for f in meta["types"][bubble_type]["fields"]]


@pytest.fixture
def meta(api_get: Callable[..., requests.Response]) -> dict:
    with FakeBubble(DATA, field_kinds=KINDS, type_displays={"coachprofile": "Coach Profile"}) as fake:
        response = api_get(fake.url, "/meta")
    assert response.status_code == 200
    return response.json()


def test_meta_lists_the_exposed_types_with_each_fields_kind_inferred_from_its_values(meta: dict) -> None:
    assert meta["get"] == ["user", "coachprofile", "booking", "payment"]
    assert meta["types"]["coachprofile"]["display"] == "Coach Profile"
    assert fields(meta, "coachprofile") == [
        ("user_user", "User", "user"),
        ("hourly_rate_number", "Hourly Rate", "number"),
        ("expertise_list_text", "Expertise", "list.text"),
        ("verified_boolean", "Verified", "boolean"),
        ("office_geographic_address", "Office", "geographic_address"),
        ("cv_file", "CV", "file"),
        ("old_notes_text", "Old Notes - deleted", "text"),  # deleted in the editor, its data still served
    ]
    assert fields(meta, "booking") == [
        ("client_user", "Client", "user"),
        ("coach_profile_custom_coachprofile", "Coach Profile", "custom.coachprofile"),
        ("session_start_date", "Session Start", "date"),
    ]
    assert fields(meta, "payment") == [
        ("booking_custom_booking", "Booking", "custom.booking"),
        ("covers_list_custom_booking", "Covers", "list.custom.booking"),
        ("amount_number", "Amount", "number"),
    ]
    assert meta["app_data"] == {"appname": "culturebridge", "app_version": "live", "use_captions_for_get": True}


def test_built_in_keys_are_not_fields_and_option_sets_come_from_the_given_kinds(meta: dict) -> None:
    assert fields(meta, "user") == [
        ("first_name_text", "First Name", "text"),
        ("role_option_os_role", "Role", "option.os_role"),  # a text to anyone reading the values
        ("profile_photo_image", "Profile Photo", "image"),
    ]


def test_the_commonest_kind_of_a_field_wins_over_a_stray_bad_value(api_get: Callable[..., requests.Response]) -> None:
    rates = [{"_id": f"1x{i}", "Hourly Rate": rate} for i, rate in enumerate([40, "fifty", 60])]
    with FakeBubble({"coachprofile": rates}) as fake:
        assert fields(api_get(fake.url, "/meta").json(), "coachprofile") == [
            ("hourly_rate_number", "Hourly Rate", "number")
        ]


def test_meta_follows_a_change_to_the_data(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble({"post": [{"_id": "1x1", "Title": "a"}]}) as fake:
        api_get(fake.url, "/meta")
        fake.put("post", {"_id": "1x2", "Title": "b", "Pinned": True})
        assert ("pinned_boolean", "Pinned", "boolean") in fields(api_get(fake.url, "/meta").json(), "post")


def test_an_explicit_meta_document_is_served_as_given(api_get: Callable[..., requests.Response]) -> None:
    given = {"get": ["post"], "post": [], "types": {"post": {"display": "Post", "fields": []}}, "app_data": {}}
    with FakeBubble({"post": [{"_id": "1x1", "Title": "a"}]}, meta=given) as fake:
        assert api_get(fake.url, "/meta").json() == given


def test_hidden_meta_answers_404_on_live_and_version_test(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble(DATA, hide_meta=True) as fake:
        answers = [api_get(root, "/meta") for root in (fake.url, fake.test_url)]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[0].json()["statusCode"] == 404
        assert api_get(fake.url, "/obj/user").status_code == 200  # the data is still there


def test_version_test_has_its_own_meta(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble(DATA, test_data={"post": [{"_id": "1x1", "Draft": True}]}) as fake:
        test_meta = api_get(fake.test_url, "/meta").json()
    assert test_meta["get"] == ["post"]
    assert fields(test_meta, "post") == [("draft_boolean", "Draft", "boolean")]
    assert test_meta["app_data"]["app_version"] == "test"


def test_meta_needs_no_token_but_refuses_a_wrong_one(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble(DATA) as fake:
        assert api_get(fake.url, "/meta", token=None).status_code == 200
        assert api_get(fake.url, "/meta", token="wrong").status_code == 401


# -- an app with "Use field display instead of ID for key names" off ---------------------------------
def test_an_id_keyed_app_serves_field_ids_as_keys_and_its_meta_agrees(
    api_get: Callable[..., requests.Response], search_ids: Callable[..., list[str]]
) -> None:
    by_id, id_meta = id_keyed(DATA, field_kinds=KINDS)
    with FakeBubble(by_id, meta=id_meta) as fake:
        user = api_get(fake.url, f"/obj/user/{U1}").json()["response"]
        served_meta = api_get(fake.url, "/meta").json()
        assert search_ids(
            fake.url, "user", [{"key": "role_option_os_role", "constraint_type": "equals", "value": "Coach"}]
        ) == [U1]
        assert (
            api_get(fake.url, "/obj/user", constraints=[{"key": "Role", "constraint_type": "is_empty"}]).status_code
            == 404
        )
    assert user["first_name_text"] == "Ana" and user["role_option_os_role"] == "Coach"
    assert user["Created Date"] == STAMP["Created Date"] and "authentication" in user  # built-ins keep their names
    assert served_meta["app_data"]["use_captions_for_get"] is False
    for bubble_type, records in by_id.items():
        ids = {f["id"] for f in served_meta["types"][bubble_type]["fields"]}
        custom = {k for r in records for k in r} - {"_id", "Created Date", "Modified Date", "Created By", "Slug"}
        assert custom - {"authentication", "user_signed_up"} <= ids
    assert by_id["coachprofile"][0]["old_notes_text"] == "still here"


def test_the_bundled_sample_meta_types_its_fields_as_the_design_does() -> None:
    with FakeBubble(**sample_server_args(generate_sample(20))) as fake:
        meta = fake.meta()
    kinds = {t: {f["display"]: f["type"] for f in meta["types"][t]["fields"]} for t in meta["get"]}
    assert meta["types"]["clientprofile"]["display"] == "Client Profile"
    assert kinds["user"]["Role"] == "option.os_role" and kinds["user"]["Profile Photo"] == "image"
    assert kinds["clientprofile"]["User"] == "user" and kinds["clientprofile"]["Goals"] == "list.text"
    assert kinds["payment"]["Booking"] == "custom.booking" and kinds["payment"]["Paid At"] == "date"
    assert kinds["coachprofile"]["Hourly Rate"] == "number" and kinds["coachprofile"]["Verified"] == "boolean"
    assert kinds["resource"]["File"] == "file" and kinds["comment"]["Post"] == "custom.post"


def test_meta_kept_current_record_by_record_equals_meta_inferred_again_from_all_the_records() -> None:
    from culturebridge_migration.fake_bubble.database import Database
    from culturebridge_migration.fake_bubble.meta import infer_meta

    data = {"post": [{"_id": f"p{i}", "Title": f"t{i}", "Score": i} for i in range(5)], "user": [{"_id": "u1"}]}
    db = Database(data)
    db.meta()  # the counts are built here; what follows updates them
    db.put("post", {"_id": "p1", "Title": "edited", "Score": "now text", "Author": "u1"})  # a new field, a reference
    db.put("post", {"_id": "p9", "Title": "new", "Score": 3})
    db.delete("post", "p0")
    db.update("post", "p2", lambda thing: {**thing, "Score": None})
    db.put("comment", {"_id": "c1", "Body": "a new type", "On": "p9"})
    again = infer_meta({t: db.records(t) for t in ("post", "user", "comment")})
    assert db.meta()["types"] == again["types"]
    assert {f["display"]: f["type"] for f in db.meta()["types"]["post"]["fields"]}["Author"] == "user"


def test_meta_of_a_list_nested_thousands_deep_is_a_list_of_text_not_a_recursion_error() -> None:
    from culturebridge_migration.fake_bubble.database import Database

    deep: list = []
    for _ in range(5000):
        deep = [deep]
    db = Database({"post": [{"_id": "p1", "Tags": deep}]})
    assert {f["display"]: f["type"] for f in db.meta()["types"]["post"]["fields"]}["Tags"] == "list.text"
    db.put("post", {"_id": "p2", "Tags": deep, "Body": "a\x00b", "Link": "http://127.0.0.1/x"})  # counted at once
    assert db.meta()["types"]["post"]["fields"]


def test_meta_is_inferred_before_the_server_answers_its_first_request() -> None:
    # Bubble's /meta is the schema it keeps: the stand-in infers it once at start (seconds for 590k records),
    # not on the first export's clock.
    fake = FakeBubble(DATA, test_data={"post": [{"_id": "1x1", "Draft": True}]})
    assert not fake.live_db.meta_inferred
    with fake:
        assert fake.live_db.meta_inferred and fake.test_db.meta_inferred
