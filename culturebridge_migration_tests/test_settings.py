"""The one table of settings: the README's table is generated from it, and every variable read is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import culturebridge_migration
from culturebridge_migration.settings import BY_VARIABLE, SETTINGS, parsed, readme_table, with_readme_table

PACKAGE = Path(culturebridge_migration.__file__).parent
README = PACKAGE.parent / "README.md"
NOT_OURS = {"DAGSTER_HOME"}  # Dagster's own variable, read by the CLI's `instance init`
READ = re.compile(r"""(?:environ\.get|environ\[|getenv|EnvVar(?:\.int)?)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")


def test_the_readme_table_is_the_one_generated_from_the_settings() -> None:
    readme = README.read_text()
    assert readme_table() in readme
    assert with_readme_table(readme) == readme, "run: PYTHONPATH=. python scripts/write_settings_table.py"


def test_every_variable_the_package_reads_is_a_setting() -> None:
    read = {name for path in PACKAGE.rglob("*.py") for name in READ.findall(path.read_text())}
    assert read - NOT_OURS <= set(BY_VARIABLE), sorted(read - NOT_OURS - set(BY_VARIABLE))
    assert {"BUBBLE_API_URL", "BUBBLE_API_KEY", "DATABASE_URL"} <= read  # the pattern finds what it is for


def test_each_variable_is_in_the_table_once_and_documented() -> None:
    assert len(BY_VARIABLE) == len(SETTINGS)
    assert all(s.doc and "\n" not in s.doc and "|" not in s.doc for s in SETTINGS)


@pytest.mark.parametrize(
    ("variable", "text", "value"),
    [
        ("MIGRATION_KEEP_UNMIGRATED_TYPES", "No", False),
        ("MIGRATION_KEEP_UNMIGRATED_TYPES", "yes", True),
        ("MIGRATION_MAX_REJECT_SHARE", "0.25", 0.25),
        ("MIGRATION_FILE_WORKERS", "3", 3),
        ("MIGRATION_BATCH_SIZE", "100", 100),
        ("LOG_LEVEL", "debug", "DEBUG"),
    ],
)
def test_parsers_read_what_the_readme_says(variable: str, text: str, value: object) -> None:
    assert parsed(BY_VARIABLE[variable], text) == value


@pytest.mark.parametrize(
    ("variable", "text", "words"),
    [
        ("MIGRATION_MAX_REJECT_SHARE", "1.5", "a share between 0 and 1"),
        ("MIGRATION_MAX_REJECT_SHARE", "half", "a share between 0 and 1"),
        ("MIGRATION_FILE_WORKERS", "0", "a positive whole number"),
        ("MIGRATION_BATCH_SIZE", "500", "a whole number from 1 to 100"),  # once silently cut to 100
        ("MIGRATION_BATCH_SIZE", "0", "a whole number from 1 to 100"),
        ("LOG_LEVEL", "loud", "one of DEBUG, INFO"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable: str, text: str, words: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable} is {text!r}: set it to {words}"):
        parsed(BY_VARIABLE[variable], text)
