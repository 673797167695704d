"""The parsers of Bubble values (API JSON and CSV export text): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from culturebridge_migration.mapping.values import (
    MAX_JSON_DEPTH,
    bubble_id_problem,
    enum_parser,
    nesting_depth,
    normalize_url,
    parse_bool,
    parse_currency,
    parse_datetime,
    parse_decimal,
    parse_integer,
    parse_list,
    pruned_json_text,
    text_nesting_depth,
)


@pytest.mark.parametrize(
    ("text", "number"), [("12.5", Decimal("12.5")), ("$1,234.50", Decimal("1234.50")), (80, Decimal(80))]
)
def test_numbers_accept_dollars_and_thousands_separators(text: object, number: Decimal) -> None:
    assert parse_decimal(text) == number


@pytest.mark.parametrize("text", ["12,50", "12,50 EUR", "fifty", "NaN", True])
def test_numbers_refuse_decimal_commas_words_and_booleans(text: object) -> None:
    with pytest.raises(ValueError):
        parse_decimal(text)


def test_whole_numbers_refuse_fractions() -> None:
    assert parse_integer("60") == 60
    with pytest.raises(ValueError, match="whole number"):
        parse_integer(60.5)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2025-11-05T14:03:22.120Z", datetime(2025, 11, 5, 14, 3, 22, 120000, tzinfo=UTC)),
        ("2025-11-05T15:03:22+01:00", datetime(2025, 11, 5, 14, 3, 22, tzinfo=UTC)),
        ("Nov 5, 2025 2:03 pm", datetime(2025, 11, 5, 14, 3, tzinfo=UTC)),
        ("11/05/2025", datetime(2025, 11, 5, tzinfo=UTC)),
        (1762351402120, datetime(2025, 11, 5, 14, 3, 22, 120000, tzinfo=UTC)),  # Bubble's epoch milliseconds
    ],
)
def test_dates_in_every_common_form_become_utc(text: object, moment: datetime) -> None:
    assert parse_datetime(text) == moment


def test_naive_dates_are_read_in_the_given_zone_across_daylight_saving() -> None:
    assert parse_datetime("Nov 5, 2025 2:03 pm", "America/New_York") == datetime(2025, 11, 5, 19, 3, tzinfo=UTC)
    assert parse_datetime("Jul 5, 2025 2:03 pm", "America/New_York") == datetime(2025, 7, 5, 18, 3, tzinfo=UTC)


@pytest.mark.parametrize("text", ["next tuesday", "31/31/2025", "", None, [2025]])
def test_text_that_is_not_a_date_is_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_yes_no_lists_and_option_sets() -> None:
    assert (parse_bool("yes"), parse_bool(False), parse_bool("No")) == (True, False, False)
    with pytest.raises(ValueError):
        parse_bool("maybe")
    assert parse_list("a , b , ") == ["a", "b"]
    assert parse_list([" x ", 3]) == ["x", "3"]
    status = enum_parser({"Pending Verification": "pending", "Active": "active"})
    assert (status("Active"), status(" pending verification ")) == ("active", "pending")
    with pytest.raises(ValueError, match="is not one of Pending Verification, Active"):
        status("Banned")


def test_currency_codes_and_protocol_relative_urls() -> None:
    assert parse_currency(" eur ") == "EUR"
    with pytest.raises(ValueError, match="ISO 4217"):
        parse_currency("EURO")
    assert normalize_url("//s3.amazonaws.com/a.jpg") == "https://s3.amazonaws.com/a.jpg"
    assert normalize_url("https://x.io/b.pdf") == "https://x.io/b.pdf"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1699999999999x123456789012345678", None),
        ("u1", None),  # opaque: any text Bubble could have made
        ("", "no _id"),
        (None, "no _id"),
        (["u1"], "a list, not text"),
        (1699999999999, "a number, not text"),
        ({"$ne": None}, "an object, not text"),
        ("u1\x00", "control character"),
        ("u1\u0085", "control character"),
        ("u\ud8001", "lone surrogate"),
        ("u" * 129, "129 characters"),
    ],
)
def test_a_bubble_id_is_text_without_control_characters_of_sane_length(value: object, problem: str | None) -> None:
    found = bubble_id_problem(value)
    assert found is None if problem is None else problem in found


def test_nesting_is_counted_without_recursion_and_stops_past_the_limit() -> None:
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert nesting_depth("text") == 0 and nesting_depth({"a": [1, {"b": []}]}) == 4
    assert MAX_JSON_DEPTH < nesting_depth(deep) <= MAX_JSON_DEPTH + 1
    assert text_nesting_depth('{"a": "[[[[", "b": [["\\"]]}') == 3  # brackets inside strings do not count
    assert text_nesting_depth("[" * 100_000 + "]" * 100_000) == 100_000


def test_a_pruned_json_text_keeps_what_is_shallow_and_shows_what_was_too_deep() -> None:
    text = '{"_id": "x1", "a": [[[["[{"]]]], "b": {"c": 1}}'
    assert pruned_json_text(text, 3) == '{"_id": "x1", "a": [[[]]], "b": {"c": 1}}'
    assert pruned_json_text(text, 10) == text
