"""reports/passwords: who can log in with their old password, its check, and the reset list once the window closed."""

from __future__ import annotations

import csv
from pathlib import Path

import dagster as dg
import pytest

from culturebridge_migration.defs.passwords import CHECK, PASSWORDS, passwords_report
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import STRONG_HASHES, generate_sample

pytestmark = pytest.mark.integration


@pytest.fixture
def users_loaded(database_url: str) -> str:
    strong = set(STRONG_HASHES.values())
    users = [
        {k: v for k, v in u.items() if k != "Legacy Password" or v in strong}
        for u in generate_sample(20).records["users"]
    ]
    with connect(database_url) as conn:
        ensure_schema(conn, Schemas())
        migrate_entity(Phase2Database(conn), ENTITIES["users"], users, run_id="c1", job_name="cutover")
    return database_url


def materialize(database_url: str, folder: Path, **settings: object) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [passwords_report],
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "settings": MigrationSettings(report_dir=str(folder), **settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_while_the_window_is_open_every_active_user_can_log_in(users_loaded: str, tmp_path: Path) -> None:
    result = materialize(users_loaded, tmp_path)
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (CHECK.name, True)
    meta = result.asset_materializations_for_node(passwords_report.op.name)[0].metadata
    assert meta["window_open"].value is True
    assert meta["active_migration"].value >= 1 and meta["active_waiting"].value > 10
    assert not list(tmp_path.glob("password_resets_*.csv"))


def test_once_closed_the_check_warns_and_the_reset_list_is_written(users_loaded: str, tmp_path: Path) -> None:
    result = materialize(users_loaded, tmp_path, password_bridge_until="2020-01-01")
    [check] = result.get_asset_check_evaluations()
    assert check.passed is False and check.severity is dg.AssetCheckSeverity.WARN
    [resets] = tmp_path.glob("password_resets_*.csv")
    rows = list(csv.DictReader(resets.open()))
    with connect(users_loaded) as conn:
        waiting = conn.execute("SELECT count(*) FROM users WHERE password_hash IS NULL").fetchone()[0]
    assert len(rows) == waiting and all("@" in r["email"] for r in rows)
    assert "$2" not in resets.read_text()  # ids and e-mails, never a hash
    assert result.asset_materializations_for_node(passwords_report.op.name)[0].asset_key == PASSWORDS
