"""The previews the UI shows: an export's first records (passwords masked) and a load's rejects. Pure."""

from __future__ import annotations

from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.rejects import Reject
from culturebridge_migration.reporting.markdown import export_preview, rejects_preview


def test_export_preview_masks_password_hashes_and_escapes_cells() -> None:
    record = {
        "_id": "1x1",
        "First Name": "Ana | Bea",
        "authentication": {"email": {"email": "ana@example.com"}},
        "Legacy Password": "$2b$12$" + "a" * 53,
    }
    preview = export_preview(ENTITIES["users"], [record])
    assert "$2b$12$" not in preview and "***" in preview
    assert "Ana \\| Bea" in preview and "ana@example.com" in preview


def test_rejects_preview_lists_what_to_do_and_points_at_the_report_for_the_rest() -> None:
    rejects = [
        Reject("users", f"1x{i}", "Role", "role", "Mentor", "unknown_enum", "add it to the role mapping")
        for i in range(25)
    ]
    preview = rejects_preview(rejects)
    assert preview.count("add it to the role mapping") == 20
    assert "… and 5 more in the errors report." in preview
    assert rejects_preview([]) == "No rejects."
