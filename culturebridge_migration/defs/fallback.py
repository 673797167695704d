"""The way back to Phase 1 after cutover: `fallback_rehearsal` says what would be written to Bubble, `fallback`
writes it and exits 0 only when Bubble, read back, holds every change the Phase 2 app made since cutover."""

from collections.abc import Iterator

import dagster as dg

from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_reports import run_stamp
from culturebridge_migration.fallback.read_back import read_back
from culturebridge_migration.fallback.replay import replay
from culturebridge_migration.reporting.fallback_report import fallback_json, fallback_texts
from culturebridge_migration.reporting.files import write_report_files
from culturebridge_migration.sources.bubble_api import BubbleError
from culturebridge_migration.sources.source import ApiSource

FALLBACK_ASSET = dg.AssetKey(["fallback", "bubble"])


class FallbackConfig(dg.Config):
    rehearsal: bool = False  # read and report what would be written; write nothing to Bubble or Phase 2


@dg.op(description="Write the Phase 2 app's changes since cutover to Bubble, then read them back.")
def fallback_op(
    context: dg.OpExecutionContext,
    config: FallbackConfig,
    postgres: PostgresResource,
    bubble: BubbleResource,
    settings: MigrationSettings,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output]:
    if not bubble.api_url:
        raise dg.Failure("The fallback writes to the Bubble app: set BUBBLE_API_URL and BUBBLE_API_KEY")
    with (
        postgres.writer(context, settings.writer_wait_seconds, run_done=True),
        postgres.database() as db,
        bubble.open() as source,
    ):
        assert isinstance(source, ApiSource)
        try:
            done = replay(db, source.client, rehearsal=config.rehearsal, log=context.log.info)
            back = None if config.rehearsal else read_back(db, source.client)
        except BubbleError as exc:
            raise dg.Failure(f"The fallback stopped; run it again to go on from here: {exc}") from None
    report = fallback_json(context.run.run_id, done, back)
    texts = fallback_texts(report)
    paths = write_report_files(settings.report_dir, run_stamp(context.instance, context.run.run_id), texts)
    outcome = "SKIPPED" if config.rehearsal else ("PASS" if report["complete"] else "FAIL")
    # Yielded, not logged: a step that then fails keeps what it yielded, and drops what it logged.
    yield (
        dg.AssetMaterialization(
            FALLBACK_ASSET,
            description="The Phase 2 app's changes since cutover, as Bubble holds them",
            metadata={
                "run_kind": report["run_kind"],
                "outcome": outcome,
                "check": "changes_in_bubble (ERROR): every captured change read back from Bubble",
                "written": dg.MetadataValue.json(done.done),
                "planned": dg.MetadataValue.json(done.planned),
                "conflicts": len(report["conflicts"]),
                "dead_letters": len(report["dead_letters"]),
                "summary": dg.MetadataValue.md(f"```\n{texts['fallback_summary']}```"),
                **{kind: dg.MetadataValue.path(str(path)) for kind, path in paths.items()},
            },
        )
    )
    yield (
        dg.AssetCheckEvaluation(
            asset_key=FALLBACK_ASSET,
            check_name="changes_in_bubble",
            passed=config.rehearsal or report["complete"],  # skipped: recorded passed, its outcome says SKIPPED
            severity=dg.AssetCheckSeverity.ERROR,
            description="SKIPPED: a rehearsal writes nothing" if config.rehearsal else report["verdict"],
            metadata={
                "outcome": outcome,
                "offending_rows": 0 if back is None else back.offending,
                "conflicts": len(report["conflicts"]),
                "dead_letters": len(report["dead_letters"]),
            },
        )
    )
    context.log.info(f"Fallback report: {paths['fallback_summary']}\n{report['verdict']}")
    if not report["complete"]:
        raise dg.Failure(report["verdict"])
    yield dg.Output(None)


@dg.job(description="Write the Phase 2 app's changes since cutover back to Bubble (exit 0: Bubble holds them all).")
def fallback() -> None:
    fallback_op()


fallback_rehearsal = fallback.graph.to_job(
    "fallback_rehearsal",
    description="What the fallback would write to Bubble, and what it could not (conflicts): nothing is written.",
    config={"ops": {"fallback_op": {"config": {"rehearsal": True}}}},
)

FALLBACK_JOBS = [fallback, fallback_rehearsal]
