"""How a run was asked to behave, by the tags an operator (or a job) sets on it."""

from collections.abc import Mapping

import dagster as dg

# A rehearsal of the run (`cutover_rehearsal` sets it): everything computed and reported, nothing changed.
DRY_RUN_TAG = "culturebridge/dry_run"


def is_dry_run(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> bool:
    return tagged_dry_run(context.run.tags)


def tagged_dry_run(tags: Mapping[str, str]) -> bool:
    return tags.get(DRY_RUN_TAG, "").strip().lower() in ("1", "true", "yes")
