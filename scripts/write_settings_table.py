"""Writes the README's table of settings from culturebridge_migration/settings.py; run it after changing one.

PYTHONPATH=. python scripts/write_settings_table.py
"""

from pathlib import Path

from culturebridge_migration.settings import with_readme_table

README = Path(__file__).resolve().parent.parent / "README.md"

if __name__ == "__main__":
    README.write_text(with_readme_table(README.read_text()))
