"""The CultureBridge migration as one Dagster code location."""

import warnings

import dagster as dg

from culturebridge_migration.defs import console
from culturebridge_migration.defs.discovery import DISCOVERY_ASSETS
from culturebridge_migration.defs.event_log import EventLogResource
from culturebridge_migration.defs.exports import EXPORT_ASSETS
from culturebridge_migration.defs.fallback import FALLBACK_JOBS
from culturebridge_migration.defs.files import FILE_ASSETS
from culturebridge_migration.defs.jobs import JOBS, SCHEDULES, SENSORS
from culturebridge_migration.defs.passwords import PASSWORD_ASSETS, passwords_job, passwords_schedule
from culturebridge_migration.defs.phase2 import TABLE_ASSETS, VERBATIM_ASSETS
from culturebridge_migration.defs.reports import REPORT_ASSETS
from culturebridge_migration.defs.resources import resources_from_env

# `--select '*'` makes Dagster warn that a parameter it passes itself is in beta: nothing a user can act on.
warnings.filterwarnings("ignore", message=".*include_sources.*", category=dg.BetaWarning)

try:
    console.install()  # a failed step in one line, LOG_LEVEL=DEBUG for its stack trace
    RESOURCES = {**resources_from_env(), "event_log": EventLogResource()}  # the settings' resources, and Dagster's log
except ValueError as exc:  # a setting with a bad value: its one line, naming it and the fix, not a traceback
    raise SystemExit(f"error: {exc}") from None

ALL_ASSETS = [
    *EXPORT_ASSETS,
    *DISCOVERY_ASSETS,
    *TABLE_ASSETS,
    *VERBATIM_ASSETS,
    *FILE_ASSETS,
    *REPORT_ASSETS,
    *PASSWORD_ASSETS,
]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[*JOBS, *FALLBACK_JOBS, passwords_job],
    schedules=[*SCHEDULES, passwords_schedule],
    sensors=SENSORS,
    resources=RESOURCES,
    executor=dg.multiprocess_executor.configured(
        {
            # Each step is a process of its own, forked from a server that imported this package once: a step
            # starts in a fraction of the seconds a fresh interpreter takes to import Dagster and the graph.
            # Named, since Dagster preloads only itself for `-m` (the README's quick start: 37 s -> 25 s).
            "start_method": {"forkserver": {"preload_modules": ["culturebridge_migration"]}},
            # A step starts once the assets it reads exist, not when the steps making them end: a table loads
            # as soon as its type is exported, while the later types still page. A load refuses an incomplete
            # export itself, and the reports wait for the run's other steps (and their checks) to end. As many
            # steps at once as cores (Dagster's default): one more made the 0 ms benchmark 99 s -> 131 s.
            "step_dependency_config": {"require_upstream_step_success": False},
        }
    ),
)
