"""`reports/passwords`: how many users can log in with their old password, and the daily schedule that shows it.

Its check (WARN) says whether enough active users can log in without a reset; once the bridge window has closed,
the asset writes the reset list (user ids and e-mails, never a hash) for the team's mailer.
"""

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from culturebridge_migration.bridge.config import parse_until
from culturebridge_migration.bridge.report import PasswordReport, password_report
from culturebridge_migration.defs.checks import check_result, check_spec
from culturebridge_migration.defs.phase2 import table_key
from culturebridge_migration.defs.reports import PASSWORDS, SUMMARY
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.validation.password_checks import ACTIVE_USERS_CAN_LOG_IN_CHECK, LoginReadiness

CHECK = ACTIVE_USERS_CAN_LOG_IN_CHECK


@dg.multi_asset(
    name="reports__passwords",
    specs=[
        dg.AssetSpec(
            PASSWORDS,
            group_name="reports",
            # After a run's report files: its check is never half-way in their summary.
            deps=[table_key("users"), SUMMARY],
            kinds={"postgres"},
            description="Users who can log in with their old password: hash from the migration, carried by the "
            "login bridge, set by the app, still waiting; per day; after the window, the reset list for the mailer.",
        )
    ],
    check_specs=[check_spec(CHECK, PASSWORDS)],
    can_subset=True,  # the asset without its check (a selection `without_checks()`), like every table
)
def passwords_report(
    context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    until = parse_until(settings.password_bridge_until) if settings.password_bridge_until else None
    # A step of the run like any other: it holds Phase 2 with the run, and counts itself done.
    with postgres.writer(context, settings.writer_wait_seconds), postgres.database() as db:
        report = password_report(db, until)
    resets = _write_resets(report, Path(settings.report_dir)) if report.resets else None
    yield dg.MaterializeResult(asset_key=PASSWORDS, metadata=_metadata(report, resets))
    if dg.AssetCheckKey(PASSWORDS, CHECK.name) in context.selected_asset_check_keys:
        yield check_result(CHECK, CHECK.evaluate(_readiness(report)), PASSWORDS)


def _readiness(report: PasswordReport) -> LoginReadiness:
    return LoginReadiness(report.active_users, report.can_log_in)


def _metadata(report: PasswordReport, resets: Path | None) -> dict[str, object]:
    days = sorted(set(report.carried_per_day) | set(report.attempts_per_day))
    table = ["| day | carried | tries (by outcome) |", "|---|---|---|"] + [
        f"| {day} | {report.carried_per_day.get(day, 0)} | "
        f"{', '.join(f'{k}: {v}' for k, v in report.attempts_per_day.get(day, {}).items())} |"
        for day in days
    ]
    return {
        "window_closes_at": report.window_closes_at.isoformat() if report.window_closes_at else "closed",
        "window_open": report.window_open,
        "active_users": report.active_users,
        **{f"active_{standing}": count for standing, count in report.active_by_standing.items()},
        "can_log_in_share": _readiness(report).share,
        "per_day": dg.MetadataValue.md("\n".join(table)),
        **(
            {"reset_list": dg.MetadataValue.path(str(resets.resolve())), "resets": len(report.resets)} if resets else {}
        ),
    }


def _write_resets(report: PasswordReport, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"password_resets_{datetime.now(UTC):%Y%m%d_%H%M%S}.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "email", "status"])
        writer.writerows(report.resets)
    return path


passwords_job = dg.define_asset_job(
    "passwords_report", selection=[PASSWORDS], description="The login bridge's progress (reports/passwords)."
)
passwords_schedule = dg.ScheduleDefinition(
    name="passwords_daily",
    job=passwords_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # turned on at cutover, when the bridge opens
    description="reports/passwords every morning while the login bridge runs, and the reset list at its close.",
)
PASSWORD_ASSETS = [passwords_report]
