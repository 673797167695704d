"""What a `dagster` command prints of a run: Dagster's colored lines at LOG_LEVEL, a failure in one line.

Dagster prints a failed step's whole stack trace, and the run's failure repeats it: 80 lines for a
database that is down. Its console logger has no setting for that, and a job's own loggers are used
only when the run config names them (`dagster asset materialize` names none), so this module makes its
logger Dagster's default console logger (`install`). The UI and the event log keep every event whole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dagster as dg
from dagster._core.execution import context_creation_job  # where Dagster picks the loggers of a run

from culturebridge_migration.reporting.log_lines import is_consequence, one_line
from culturebridge_migration.settings import setting_value


class _OneLineFailures(logging.Formatter):
    """Formats a copy of each record whose message loses its stack trace (the record itself is left alone)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner
        self.already_said: set[str] = set()

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        short = one_line(message, self.already_said)
        if short == message:
            return self.inner.format(record)
        return self.inner.format(logging.makeLogRecord({**record.__dict__, "msg": short, "args": None}))


def console_logger(level: str) -> logging.Logger:
    """Dagster's colored console logger at `level`; below DEBUG, failures in one line, and the steps a
    failure kept from running left to the run's failure line, which names the failed steps."""
    logger = dg.colored_console_logger.logger_fn(  # type: ignore[misc]
        dg.build_init_logger_context(logger_config={"name": "dagster", "log_level": level})
    )
    if level != "DEBUG":
        for handler in logger.handlers:
            handler.setFormatter(_OneLineFailures(handler.formatter or logging.Formatter()))
            handler.addFilter(lambda record: not is_consequence(record.getMessage()))
    return logger


@dg.logger(description="Dagster's colored console lines at LOG_LEVEL; below DEBUG, a failure in one line")
def one_line_console_logger(_: dg.InitLoggerContext) -> logging.Logger:
    return console_logger(str(setting_value("LOG_LEVEL")))


def _default_loggers(_instance: object) -> Sequence[tuple[dg.LoggerDefinition, dict]]:
    return [(one_line_console_logger, {})]


def install() -> None:
    """Make ours the console logger of every run that names no logger (Dagster 1.13's own default otherwise).

    Raises ValueError, naming LOG_LEVEL, for a level it does not know.
    """
    setting_value("LOG_LEVEL")
    context_creation_job.default_system_loggers = _default_loggers  # type: ignore[assignment]
