"""What a run's export was asked to do, however the run was started: its kind in every report hangs on it."""

from __future__ import annotations

import dagster as dg
import pytest

from culturebridge_migration.defs.jobs import CUTOVER_CONFIG
from culturebridge_migration.defs.run_tags import export_config


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("cutover", {"incremental": True, "census": True}),
        ("cutover_rehearsal", {"incremental": True, "census": True}),
        ("incremental_sync", {"incremental": True}),
        ("full_migration", {}),
        ("__ASSET_JOB", {}),
    ],
)
def test_a_job_started_without_config_runs_its_export_as_its_own_config_says(job: str, expected: dict) -> None:
    """`dagster job execute -j cutover` stores no run config: the job's own config still says what the run was."""
    assert export_config(dg.DagsterRun(job_name=job, run_id="r1", run_config={})) == expected


def test_config_given_with_the_run_is_what_its_export_did() -> None:
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id="r2", run_config=CUTOVER_CONFIG)
    assert export_config(run) == {"incremental": True, "census": True}


def test_the_export_op_the_jobs_configure_is_the_graphs() -> None:
    from culturebridge_migration.defs.exports import bubble_export
    from culturebridge_migration.defs.run_tags import EXPORT_OP

    assert bubble_export.node_def.name == EXPORT_OP
