"""The code location loads, in process and in the fast tier: what `dagster definitions validate` checks, and more."""

from __future__ import annotations

import dagster as dg

from culturebridge_migration.definitions import defs


def test_the_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    for job in ("full_migration", "incremental_sync", "validate_migration", "migration_reports", "rollback_migration"):
        defs.resolve_job_def(job)


def test_every_check_and_every_dependency_names_an_asset_the_graph_materializes() -> None:
    # A misspelled key in `asset=` or `deps=` would make an external stub, and validation would pass.
    graph = defs.resolve_asset_graph()
    materializable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    check_targets = {check.asset_key for check in graph.asset_check_keys}
    assert check_targets and check_targets <= materializable
    upstream = {parent for key in materializable for parent in graph.get(key).parent_keys}
    assert upstream and upstream <= materializable
