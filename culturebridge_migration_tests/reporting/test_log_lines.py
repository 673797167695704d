"""A failure on the console: one line with the error's message, the stack trace left to the UI."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from culturebridge_migration.reporting.log_lines import WHERE_THE_TRACE_IS, is_consequence, one_line

STEP = 'bubble_export - STEP_FAILURE - Execution of step "bubble_export" failed.'
RUN = "RUN_FAILURE - Execution of run for \"__ASSET_JOB\" failed. Steps failed: ['bubble_export']."
TRACE = (
    '\n\nStack Trace:\n  File "/x/execute_plan.py", line 243, in step\n    yield from check.generator(step_events)\n'
)


def test_a_failure_of_ours_is_its_message_on_the_step_line_without_the_class_or_the_trace() -> None:
    failure = "dagster._core.definitions.events.Failure: Cannot connect to PostgreSQL. Check DATABASE_URL"
    assert one_line(f"{STEP}\n\n{failure}{TRACE}", set()) == (
        f"{STEP} Cannot connect to PostgreSQL. Check DATABASE_URL {WHERE_THE_TRACE_IS}"
    )


def test_an_unexpected_error_keeps_its_class_name_and_points_at_the_trace() -> None:
    error = (
        'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "x"::\n\n'
        "KeyError: 'email'"
    )
    assert one_line(f"{STEP}\n\n{error}{TRACE}", set()) == f"{STEP} KeyError: 'email' {WHERE_THE_TRACE_IS}"


def test_the_run_failure_names_its_failed_steps_and_does_not_repeat_their_error() -> None:
    failure = "dagster._core.definitions.events.Failure: Cannot connect to PostgreSQL"
    assert one_line(f"{RUN}\n\n{failure}{TRACE}", set()) == RUN


def test_an_error_already_said_in_this_process_is_not_said_again() -> None:
    said: set[str] = set()
    message = f"{STEP}\n\ndagster._core.definitions.events.Failure: disk full{TRACE}"
    assert "disk full" in one_line(message, said)
    assert one_line(message, said) == STEP


def test_a_message_without_a_stack_trace_is_left_as_it_is() -> None:
    message = "export users: 1,200 records\nsecond line kept"
    assert one_line(message, set()) == message


@settings(max_examples=500)
@given(head=st.text(), error=st.text())
@example(head="\n", error="")  # once an IndexError in the logger: a head of only a line break
def test_any_failure_with_a_stack_trace_prints_as_one_line(head: str, error: str) -> None:
    line = one_line(f"{head}\n\n{error}{TRACE}", set())
    assert len(line.splitlines()) <= 1  # a head of only line breaks leaves an empty line, never a crash


def test_a_step_not_run_because_another_failed_is_a_consequence_and_a_failure_is_not() -> None:
    assert is_consequence("phase2_users - Dependencies for step phase2_users failed: ['bubble_export']. Not executing.")
    assert not is_consequence(f"{STEP} Cannot connect to PostgreSQL")
