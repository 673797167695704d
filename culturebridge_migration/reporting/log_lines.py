"""What the console says of a failure: one line with the error's own message, the stack trace left to the UI.

Dagster appends an error's whole stack trace to the log line of a failed step and again to the run's
failure; a person running the CLI needs the message (ours name the fix), once.
"""

from __future__ import annotations

STACK_TRACE = "\nStack Trace:"
WHERE_THE_TRACE_IS = "(stack trace: the run's page in the UI, or LOG_LEVEL=DEBUG)"
# How Dagster introduces an error raised in the code it ran, before the error itself.
_PREAMBLES = ("Error occurred while executing", "The above exception")
_STEPS_FAILED = "Steps failed: ["  # Dagster's run failure: `Execution of run for "job" failed. Steps failed: [...]`
_FAILURE_CLASS = "dagster._core.definitions.events.Failure: "  # our own dg.Failure: its message says it all


def error_line(error: str) -> str:
    """The line of a Dagster error text that says what went wrong: `KeyError: 'x'`, or a Failure's message."""
    for line in error.splitlines():
        line = line.strip()
        if line.startswith(_FAILURE_CLASS):
            return line[len(_FAILURE_CLASS) :]
        name, colon, rest = line.partition(": ")
        if colon and "." in name and " " not in name:  # `package.module.KeyError: ...`: the class's own name
            line = f"{name.rsplit('.', 1)[1]}: {rest}"
        if line and not rest.startswith(_PREAMBLES) and not line.startswith((*_PREAMBLES, "Stack Trace")):
            return line
    return ""


def one_line(message: str, already_said: set[str]) -> str:
    """`message` without its stack trace: its first line and the error's line, unless that was already said.

    A message without a stack trace is returned as it is. `already_said` collects the error lines given,
    so that the run's failure does not repeat its step's.
    """
    if STACK_TRACE not in message:
        return message
    head, _, error = message.partition("\n\n")
    head = next(iter(head.splitlines()), "")
    line = error_line(error)
    # A run's failure that names its failed steps repeats their error, which their own lines gave (in the
    # processes of the steps: `already_said` cannot know).
    if not line or line in already_said or _STEPS_FAILED in head:
        return head
    already_said.add(line)
    return f"{head} {line} {WHERE_THE_TRACE_IS}"


def is_consequence(message: str) -> bool:
    """A step Dagster did not run because a step before it failed: the failed step's own line said why."""
    return "Dependencies for step " in message and message.rstrip().endswith("Not executing.")
