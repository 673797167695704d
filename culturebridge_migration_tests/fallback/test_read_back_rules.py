"""What counts as "Bubble holds what Phase 2 sent", and the fallback's verdict: pure, no server, no database."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from culturebridge_migration.fallback.read_back import ReadBack, same
from culturebridge_migration.fallback.replay import Problem, Replay
from culturebridge_migration.reporting.fallback_report import fallback_json, fallback_texts, fallback_verdict


def test_the_same_value_in_bubbles_spelling_is_the_same() -> None:
    assert same(Decimal("120.50"), 120.5)
    assert same(80, 80.0)
    assert same("2027-01-10T15:00:00.000Z", "2027-01-10T15:00:00Z")
    assert same('{"a": 1, "b": [2]}', '{"b":[2],"a":1}')
    assert same(None, [])  # an empty field: Bubble leaves it out
    assert same({"email": {"email": "a@b.co"}}, {"email": {"email": "a@b.co"}, "google": None})


def test_a_different_value_is_not_the_same() -> None:
    assert not same("Renamed", "Changed in Bubble")
    assert not same(120.5, 120.51)
    assert not same("2027-01-10T15:00:00Z", "2027-01-10T15:00:01Z")
    assert not same("x", None)
    assert not same(True, 1)  # a yes/no is compared as itself, never as a number
    assert not same(False, 0)
    assert not same(["a"], ["a", "b"])


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text())))
def test_every_value_is_the_same_as_itself(value: object) -> None:
    assert same(value, value)


def test_a_fallback_with_a_dead_letter_is_not_complete_even_when_bubble_reads_back_clean() -> None:
    done = Replay(rehearsal=False, problems=[Problem("dead_letter", "users", 7, None, "insert", "refused")])
    complete, line = fallback_verdict(done, ReadBack())
    assert not complete and line.startswith("VERDICT: NOT COMPLETE")


def test_a_fallback_that_did_not_read_bubble_back_is_not_complete() -> None:
    complete, line = fallback_verdict(Replay(rehearsal=False), None)
    assert not complete and "not read back" in line


def test_a_fallback_whose_every_change_reads_back_is_complete_and_says_so_last() -> None:
    done = Replay(rehearsal=False, planned={"users": {"insert": 1, "update": 0, "delete": 0}})
    done.count(done.done, "users", "insert")
    report = fallback_json("run-1", done, ReadBack(checked={"users": 1}))
    assert report["complete"] and report["run_kind"] == "fallback"
    summary = fallback_texts(report)["fallback_summary"]
    assert summary.splitlines()[0].startswith("Fallback") and summary.splitlines()[-1].startswith("VERDICT: COMPLETE")
    assert "users" in summary and "1/1" in summary


def test_a_rehearsal_says_it_wrote_nothing() -> None:
    report = fallback_json("run-2", Replay(rehearsal=True), None)
    assert report["run_kind"] == "fallback_rehearsal"
    assert fallback_texts(report)["fallback_summary"].splitlines()[0].startswith("Fallback rehearsal")


def test_hostile_values_read_back_are_compared_not_crashed_on() -> None:
    deep = "[" * 5000 + "]" * 5000  # JSON nested thousands deep, in a text field
    assert same(deep, deep)
    assert not same(deep, "[" * 4999 + "]" * 4999)
    assert not same("a\x00b", "ab")  # a NUL is a character like any other
    assert not same("text", ["text"])  # a list where text belongs
    assert not same("https://cdn.example/a.png", "http://127.0.0.1/a.png")
