"""How a run was asked to behave, by the tags an operator (or a job) sets on it."""

from collections.abc import Mapping

import dagster as dg

# A rehearsal of the run (`cutover_rehearsal` sets it): everything computed and reported, nothing changed.
DRY_RUN_TAG = "culturebridge/dry_run"


def is_dry_run(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> bool:
    return tagged_dry_run(context.run.tags)


def tagged_dry_run(tags: Mapping[str, str]) -> bool:
    return tags.get(DRY_RUN_TAG, "").strip().lower() in ("1", "true", "yes")


# What each job asks of its export (the config of the op that exports every type). `dagster job execute -j
# cutover` stores no run config of its own, so the reports read a run's export from here when it has none.
EXPORT_OP = "bubble_export"
INCREMENTAL_EXPORT = {"incremental": True}
CUTOVER_EXPORT = {"incremental": True, "census": True}
JOB_EXPORTS = {"incremental_sync": INCREMENTAL_EXPORT, "cutover": CUTOVER_EXPORT, "cutover_rehearsal": CUTOVER_EXPORT}


def export_config(run: dg.DagsterRun) -> dict:
    """The export config a run ran with: its own run config's, else its job's."""
    given = (run.run_config or {}).get("ops", {}).get(EXPORT_OP, {}).get("config")
    return dict(given) if given is not None else dict(JOB_EXPORTS.get(run.job_name, {}))
