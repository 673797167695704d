"""The event log resource keeps a SQLite instance's files open for the run, and only for the run."""

from pathlib import Path

import dagster as dg

from culturebridge_migration.defs.event_log import EventLogResource


def _run_shard_wal_after_a_log(tmp_path: Path, resources: dict) -> tuple[bool, Path]:
    """Runs one asset that logs (an event stored and its connection closed), then looks for the shard's WAL."""
    seen: dict[str, bool] = {}

    @dg.asset(required_resource_keys=set(resources))
    def logs(context: dg.AssetExecutionContext) -> None:
        context.log.info("an event Dagster stores through a connection it closes at once")
        seen["wal"] = Path(context.instance.event_log_storage.path_for_shard(context.run.run_id) + "-wal").exists()

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize([logs], instance=instance, resources=resources)
        assert result.success
        shard = Path(instance.event_log_storage.path_for_shard(result.run_id))
    return seen["wal"], shard


def test_a_held_event_log_is_not_checkpointed_at_each_event(tmp_path: Path) -> None:
    # While another connection holds the file, closing Dagster's leaves the write-ahead log in place:
    # the checkpoint and its syncs are skipped.
    held, shard = _run_shard_wal_after_a_log(tmp_path, {"event_log": EventLogResource()})
    assert held
    # Released at the run's end: the last write after it checkpoints and removes the log again.
    assert shard.exists() and not Path(f"{shard}-wal").exists()


def test_without_the_resource_each_event_checkpoints(tmp_path: Path) -> None:
    held, _ = _run_shard_wal_after_a_log(tmp_path, {})
    assert not held


def test_the_resource_does_nothing_without_an_instance() -> None:
    resource = EventLogResource()
    with dg.build_init_resource_context() as context:
        resource.setup_for_execution(context)
        resource.teardown_after_execution(context)
