"""The code location loads, in process and in the fast tier: what `dagster definitions validate` checks, and more."""

from __future__ import annotations

import dagster as dg

from culturebridge_migration.definitions import defs
from culturebridge_migration.defs.phase2 import TABLE_ASSETS, table_key
from culturebridge_migration.defs.resources import PostgresResource
from culturebridge_migration.mapping.entities import ENTITIES


def test_the_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    for job in (
        "full_migration",
        "incremental_sync",
        "cutover",
        "cutover_rehearsal",
        "validate_migration",
        "migration_reports",
        "rollback_migration",
        "fallback_rehearsal",
        "fallback",
    ):
        defs.resolve_job_def(job)


def test_every_check_and_every_dependency_names_an_asset_the_graph_materializes() -> None:
    # A misspelled key in `asset=` or `deps=` would make an external stub, and validation would pass.
    graph = defs.resolve_asset_graph()
    materializable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    check_targets = {check.asset_key for check in graph.asset_check_keys}
    assert check_targets and check_targets <= materializable
    upstream = {parent for key in materializable for parent in graph.get(key).parent_keys}
    assert upstream and upstream <= materializable


def test_each_table_asset_names_its_table_in_the_schema_an_unconfigured_run_writes() -> None:
    schema = PostgresResource().app_schema
    names = {spec.key: spec.metadata["dagster/table_name"] for asset in TABLE_ASSETS for spec in asset.specs}
    assert names == {table_key(name): f"{schema}.{entity.table}" for name, entity in ENTITIES.items()}


def test_the_syncs_run_their_small_steps_in_the_runs_process_and_a_full_migration_a_process_per_step() -> None:
    for name in ("incremental_sync", "cutover", "cutover_rehearsal"):
        assert defs.resolve_job_def(name).executor_def is dg.in_process_executor, name
    assert defs.resolve_job_def("full_migration").executor_def.name == "multiprocess"


def test_of_the_steps_ready_at_once_the_table_most_others_wait_for_starts_first_and_the_file_copies_last() -> None:
    def priority(name: str) -> int:
        (asset,) = [a for a in defs.assets if getattr(a, "node_def", None) and a.node_def.name == name]
        return int(asset.op.tags.get("dagster/priority", 0))

    tables = {name: priority(f"phase2_{e.table}") for name, e in ENTITIES.items()}
    assert max(tables, key=tables.get) == "users"  # every other table references it
    assert tables["bookings"] > tables["payments"] and tables["posts"] > tables["comments"]
    assert priority("files_users") < min(tables.values())
