"""The checks of validation/, wired into Dagster: one way to declare a check and one shape of its result.

Every result carries `offending_rows`, `sample_bubble_ids` and `seconds`, then the check's own details:
the dashboard and the reports (run_reports.py) read them by these names.
"""

import dagster as dg

from culturebridge_migration.validation.checks import Check, Outcome


def check_spec(check: Check, asset: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(check.name, asset=asset, description=check.description, blocking=check.blocking)


def check_result(check: Check, outcome: Outcome, asset: dg.AssetKey | None = None) -> dg.AssetCheckResult:
    """`asset` names the checked asset where the step materializes more than one."""
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(check.severity),
        description=outcome.summary,
        metadata={
            "offending_rows": outcome.offending,
            "sample_bubble_ids": dg.MetadataValue.json(outcome.sample_ids),
            "seconds": round(outcome.seconds, 3),
            **{
                k: v if isinstance(v, int | float | str) else dg.MetadataValue.json(v)
                for k, v in outcome.details.items()
            },
        },
    )
