"""Every setting the environment gives the migration, in one table: its variable, the resource field it
sets, its default, its parser and one line of doc.

`defs/resources.py` builds the Dagster resources from it, and the README's table of variables is
generated from it (`python scripts/write_settings_table.py`; a test holds it current).
Nothing here imports Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from culturebridge_migration.files.copier import DEFAULT_MAX_BYTES, DEFAULT_WORKERS
from culturebridge_migration.files.storage import DEFAULT_FILES_DIR
from culturebridge_migration.files.urls import DEFAULT_FILE_HOST_PATTERNS
from culturebridge_migration.loading.deletions import DeletedRecords

Parser = Callable[[str], object]


def whole_number(text: str) -> int:
    """A whole number; Dagster reads it at run time (`EnvVar.int`), as it reads text (`EnvVar`)."""
    return int(text)


def positive_whole_number(text: str) -> int:
    if not (text.strip().isdigit() and int(text) > 0):
        raise ValueError("set it to a positive whole number, like 8")
    return int(text)


def bubble_page_size(text: str) -> int:
    """Bubble's Data API answers at most 100 records a page: a larger size would be cut without a word."""
    if not (text.strip().isdigit() and 1 <= int(text) <= 100):
        raise ValueError("set it to a whole number from 1 to 100 (Bubble pages hold at most 100 records)")
    return int(text)


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError("set it to a share between 0 and 1, like 0.5")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(text: str) -> str:
    if text.strip().upper() not in LOG_LEVELS:
        raise ValueError(f"set it to one of {', '.join(LOG_LEVELS)}")
    return text.strip().upper()


def flag(text: str) -> bool:
    return text.lower() not in ("0", "no", "false")


@dataclass(frozen=True)
class Setting:
    variable: str
    resource: str | None  # the resource key it configures (None: read where it is used)
    field: str | None  # the resource's field
    default: object  # what applies when the variable is unset; None: nothing
    doc: str  # one line: the README's meaning and the field's description
    # None: text, handed to Dagster as an EnvVar (read at run time; the UI shows its name, never its value);
    # whole_number: an EnvVar.int the same way; any other parser runs when the definitions load.
    parse: Parser | None = None
    shown_default: str | None = None  # the README's default, when words say it better than the value


SETTINGS: tuple[Setting, ...] = (
    # -- Phase 1: Bubble ------------------------------------------------------------------------------
    Setting(
        "BUBBLE_API_URL",
        "bubble",
        "api_url",
        None,
        "`https://APP.bubbleapps.io/api/1.1` (or `.../version-test/api/1.1`)",
        shown_default="bundled sample",
    ),
    Setting(
        "BUBBLE_API_KEY",
        "bubble",
        "api_key",
        None,
        "an **admin** API token (Settings → API). A user token silently hides records behind privacy rules.",
        shown_default="",
    ),
    Setting(
        "BUBBLE_CSV_DIR",
        "bubble",
        "csv_dir",
        None,
        "instead of the API: a folder of the editor's CSV exports (one file per type, exported with unique ids)",
        shown_default="",
    ),
    Setting(
        "BUBBLE_CSV_TIMEZONE",
        "bubble",
        "csv_timezone",
        "UTC",
        "the time zone of the person who exported the CSVs (their dates carry no zone)",
    ),
    Setting(
        "BUBBLE_CSV_ENCODING",
        "bubble",
        "csv_encoding",
        "utf-8-sig",
        "text encoding of the CSV files",
        shown_default="`utf-8-sig` (Bubble's)",
    ),
    Setting(
        "MIGRATION_BATCH_SIZE",
        "bubble",
        "page_size",
        100,
        "records per Bubble page (Bubble allows 1..100)",
        bubble_page_size,
    ),
    # 8 pages in flight at Bubble's ~150 ms is about 2,300 requests/min (measured on the local server):
    # more than the 1,000/min of Bubble's legacy plans, where MIGRATION_REQUESTS_PER_MINUTE must be set.
    Setting(
        "MIGRATION_PAGE_WORKERS",
        "bubble",
        "page_workers",
        8,
        "requests in flight at once to the Bubble app, across all types and every process on this machine",
        whole_number,
    ),
    Setting(
        "MIGRATION_REQUESTS_PER_MINUTE",
        "bubble",
        "requests_per_minute",
        None,
        "requests per minute to the Bubble app from this machine (1000 on Bubble's legacy plans)",
        whole_number,
    ),
    Setting(
        "BUBBLE_FILES_URL",
        "bubble",
        "files_base_url",
        None,
        "fetch Bubble's files from `BASE/HOST/PATH` instead of their own host (the local Bubble server)",
        shown_default="their own host",
    ),
    # -- Phase 2: PostgreSQL ----------------------------------------------------------------------------
    Setting(
        "DATABASE_URL",
        "postgres",
        "database_url",
        None,
        "Phase 2 PostgreSQL, `postgresql://user:pass@host:5432/db`",
        shown_default="embedded server",
    ),
    Setting(
        "MIGRATION_SCHEMA_OWNER",
        "postgres",
        "schema_owner",
        "migration",
        "who evolves the Phase 2 tables: `migration` (this project applies and records the changes) or `app` "
        "(the app's own migrations do; a run stops before loading with the SQL)",
    ),
    # -- the migration ------------------------------------------------------------------------------------
    Setting("MIGRATION_EXPORT_DIR", "settings", "export_dir", "migration_data", "exports and id mappings"),
    Setting("MIGRATION_REPORT_DIR", "settings", "report_dir", "migration_reports", "reports, one stamped set per run"),
    Setting(
        "MIGRATION_DELETED_RECORDS",
        "settings",
        "deleted_records",
        DeletedRecords.REPORT.value,
        "what a full export does with migrated records gone from Bubble: `report`, `flag` or `delete` (below)",
    ),
    Setting(
        "MIGRATION_FIELD_MAP",
        "settings",
        "field_map",
        None,
        'JSON file renaming Bubble keys, e.g. `{"users": {"first_name": "first_name_text", "_type": "person", '
        '"_ignore": ["Legacy flag"]}}`',
        shown_default="the display names in DESIGN.md",
    ),
    Setting(
        "MIGRATION_KEEP_UNMIGRATED_TYPES",
        "settings",
        "keep_unmigrated_types",
        True,
        "export the Bubble types no table migrates and keep them verbatim (`migration.bubble_records`); "
        "`false` only lists them",
        flag,
        shown_default="`true`",
    ),
    Setting(
        "MIGRATION_MAX_REJECT_SHARE",
        "settings",
        "max_reject_share",
        0.5,
        "a table with a larger share of its records rejected fails the run (0..1): a misspelled field map is "
        "not a green run",
        share,
    ),
    Setting(
        "MIGRATION_WRITER_WAIT_SECONDS",
        "settings",
        "writer_wait_seconds",
        60,
        "how long a run waits for another run writing to the same database (below)",
        whole_number,
    ),
    Setting(
        "MIGRATION_FIXES",
        "settings",
        "fixes",
        None,
        "a filled-in errors CSV, or a JSON of value maps and corrections, applied before mapping (below)",
    ),
    # -- Bubble's files ---------------------------------------------------------------------------------
    # Two variables set one field: the first set in this order wins (a bucket over a folder).
    Setting(
        "MIGRATION_FILES_URL",
        "files",
        "target",
        DEFAULT_FILES_DIR,
        "where Bubble's files are copied in a bucket: `s3://bucket/prefix` (AWS's usual variables for endpoint, "
        "region, keys); wins over MIGRATION_FILES_DIR",
    ),
    Setting("MIGRATION_FILES_DIR", "files", "target", DEFAULT_FILES_DIR, "where Bubble's files are copied: a folder"),
    Setting(
        "MIGRATION_FILES_PUBLIC_URL",
        "files",
        "public_base_url",
        None,
        "the http(s) base URL Phase 2 links the copies by (a CDN in front of the bucket); required for a folder "
        "when DATABASE_URL is set, since a file:// path of this machine opens for nobody else",
        shown_default="the bucket's; for a folder, its `file://` URL on the embedded demo only",
    ),
    Setting(
        "MIGRATION_FILES_HOSTS",
        "files",
        "host_patterns",
        ",".join(DEFAULT_FILE_HOST_PATTERNS),
        "comma-separated host patterns of Bubble's file storage",
    ),
    Setting(
        "MIGRATION_FILE_WORKERS",
        "files",
        "workers",
        DEFAULT_WORKERS,
        "downloads at once",
        positive_whole_number,  # parsed when the definitions load: a bad value names its variable before any run
    ),
    Setting(
        "MIGRATION_FILE_MAX_BYTES",
        "files",
        "max_bytes",
        DEFAULT_MAX_BYTES,
        "a larger Bubble file is a failed copy (its link stays)",
        positive_whole_number,
        shown_default="`104857600` (100 MB)",
    ),
    # -- what a run prints --------------------------------------------------------------------------------
    Setting(
        "LOG_LEVEL",
        None,
        None,
        "INFO",
        "what a `dagster` command prints of a run: `INFO` (progress, the outcome, a failure in one line) or "
        "`DEBUG` (every event of Dagster's, failures with their stack traces)",
        log_level,
    ),
    # -- the login bridge (after cutover): culturebridge_migration/bridge/ reads these ------------------------
    Setting(
        "MIGRATION_PASSWORD_BRIDGE_UNTIL",
        "settings",
        "password_bridge_until",
        None,
        "when the login bridge closes: an ISO 8601 time (UTC without a zone), or a date (through that day, UTC)",
        shown_default="30 days after the last `cutover` run (else the last migration run)",
    ),
    Setting(
        "MIGRATION_PASSWORD_BRIDGE_SECRET",
        None,
        None,
        None,
        "the bearer token of every request to `culturebridge password-bridge serve` (16 characters or more)",
        shown_default="none: the service does not start",
    ),
    Setting(
        "BUBBLE_LOGIN_WORKFLOW",
        None,
        None,
        "culturebridge_login",
        "the Bubble app's login API workflow (`POST {BUBBLE_API_URL}/wf/NAME`, one action: Log the user in)",
    ),
)

BY_VARIABLE: dict[str, Setting] = {s.variable: s for s in SETTINGS}


def configured_text(setting: Setting, environ: Mapping[str, str] = os.environ) -> str | None:
    """The variable's text when it is set to something, else None (unset: the default applies)."""
    return environ.get(setting.variable) or None


def setting_value(variable: str, environ: Mapping[str, str] = os.environ) -> object:
    """A setting read where it is used: its variable's value, parsed, else its default."""
    setting = BY_VARIABLE[variable]
    text = configured_text(setting, environ)
    return setting.default if text is None else parsed(setting, text)


def parsed(setting: Setting, text: str) -> object:
    """`text` read by the setting's parser; a bad value names its variable."""
    if setting.parse is None:
        return text
    try:
        return setting.parse(text)
    except ValueError as exc:
        raise ValueError(f"{setting.variable} is {text!r}: {exc}") from None


def field_default(resource: str, field: str) -> object:
    """The default of a resource field the table sets: one place for it, whichever variable sets the field."""
    return next(s.default for s in SETTINGS if (s.resource, s.field) == (resource, field))


def field_doc(resource: str, field: str) -> str:
    return " / ".join(f"{s.variable}: {s.doc}" for s in SETTINGS if (s.resource, s.field) == (resource, field))


# -- the README's table ---------------------------------------------------------------------------------
README_BEGIN = (
    "<!-- settings table: generated from culturebridge_migration/settings.py by scripts/write_settings_table.py -->"
)
README_END = "<!-- end of the settings table -->"


def _shown(setting: Setting) -> str:
    if setting.shown_default is not None:
        return setting.shown_default
    return "none" if setting.default is None else f"`{setting.default}`"


def readme_table() -> str:
    lines = ["| variable | meaning | default |", "|---|---|---|"]
    lines += [f"| `{s.variable}` | {s.doc} | {_shown(s)} |" for s in SETTINGS]
    return "\n".join(lines)


def with_readme_table(readme: str) -> str:
    """The README with the table between its markers replaced by the one generated here."""
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{readme_table()}\n{README_END}{tail}"
