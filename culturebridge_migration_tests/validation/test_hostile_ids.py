"""The checks read the export's ids on a real PostgreSQL: a hostile _id is the mapper's reject, never a check's crash."""

from __future__ import annotations

import pytest

from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.export_store import ExportManifest
from culturebridge_migration.validation.checks import SAMPLE, CheckInputs, staged_export, table_checks
from culturebridge_migration.validation.export_digest import ExportDigest

pytestmark = pytest.mark.integration
T0 = "2025-11-05T14:03:22.120Z"


def post(bubble_id: object, title: str) -> dict:
    return {"_id": bubble_id, "Created Date": T0, "Modified Date": T0, "Author": "1x1", "Title": title}


@pytest.mark.parametrize("hostile", [["po2", "po3"], "po2\x00", {"$ne": None}, "po2\r\n"])
def test_the_sample_check_passes_over_a_hostile_id_it_drew(db: Phase2Database, hostile: object) -> None:
    user = {"_id": "1x1", "Created Date": T0, "authentication": {"email": {"email": "a@x.io"}}, "Role": "Client"}
    migrate_entity(db, ENTITIES["users"], [user], run_id="run-1", job_name="test")
    posts = [post("po1", "Hello"), post(hostile, "Planted")]
    outcome = migrate_entity(db, ENTITIES["posts"], posts, run_id="run-1", job_name="test")
    assert (outcome.loaded, [r.column for r in outcome.rejects]) == (1, ["bubble_id"])
    digest = ExportDigest(ENTITIES["posts"], sample_size=10).consume(posts)  # draws both
    manifest = ExportManifest("posts", "post", "test", 2, 2, 2, 1, T0, "run-1")
    inputs = CheckInputs(db, ENTITIES["posts"], digest, manifest, 10, DeletedRecords.REPORT)
    checks = {check.name: check for check in table_checks(ENTITIES["posts"])}
    with staged_export(inputs):
        result = checks[SAMPLE].evaluate(inputs)  # a list once reached PostgreSQL as "malformed array literal"
    assert (result.passed, result.details["sampled"]) == (True, 1)
