"""The `culturebridge` console script: discover an app's field map, and reach the embedded server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from culturebridge_migration.cli import main
from culturebridge_migration.fake_bubble.meta import id_keyed
from culturebridge_migration.fake_bubble.sample import sample_field_kinds
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import SampleData

CULTUREBRIDGE = Path(sys.executable).with_name("culturebridge")


@pytest.mark.integration
def test_the_field_map_discover_writes_for_an_app_keyed_by_field_ids_migrates_it_unedited(
    sample: SampleData,
    serve: Callable,
    graph_for: Callable,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    data = {ENTITIES[n].bubble_type: r for n, r in sample.records.items()}
    by_id, meta = id_keyed(data, field_kinds=sample_field_kinds())
    field_map = tmp_path / "field_map.json"
    with serve(by_id, meta=meta) as server:
        monkeypatch.setenv("BUBBLE_API_URL", server.url)
        monkeypatch.setenv("BUBBLE_API_KEY", "test-api-key")
        assert main(["discover", "--write-field-map", str(field_map)]) == 0
        assert json.loads(field_map.read_text())["users"]["first_name"] == "first_name_text"
        assert "Wrote" in capsys.readouterr().out
        result = graph_for(database_url, tmp_path, server, field_map=str(field_map)).materialize()
    assert result.success
    planted = Counter(p.entity for p in sample.planted)
    with psycopg.connect(database_url) as conn:
        for name, entity in ENTITIES.items():
            count = conn.execute(f"SELECT count(*) FROM public.{entity.table}").fetchone()[0]
            assert count == len(sample.records[name]) - planted[name], name
        assert conn.execute("SELECT count(*) FROM users WHERE first_name IS NULL").fetchone()[0] == 0


def test_discover_prints_which_type_and_key_each_column_matched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("BUBBLE_API_URL", "BUBBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # the bundled sample, served by the local Bubble server
    assert main(["discover"]) == 0
    out = capsys.readouterr().out
    columns = len(ENTITIES["users"].fields)
    assert f"users <- user: {columns} of {columns} columns matched: email <- authentication.email.email, " in out
    assert "first_name <- First Name" in out


@pytest.mark.slow
def test_db_commands_print_the_embedded_url_run_psql_on_it_and_stop_it(workdir: Path, user_env: Callable) -> None:
    def culturebridge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CULTUREBRIDGE), *args], cwd=workdir, env=user_env(), capture_output=True, text=True, timeout=300
        )

    url = culturebridge("db", "url")
    assert url.returncode == 0 and url.stdout.startswith("postgresql://")
    assert str(workdir / ".culturebridge" / "pgdata") in url.stdout
    if subprocess.run(["which", "psql"], capture_output=True).returncode == 0:
        answer = culturebridge("db", "psql", "-At", "-c", "SELECT 41 + 1")
        assert answer.returncode == 0 and answer.stdout.strip() == "42"
    stopped = culturebridge("db", "stop")
    assert stopped.returncode == 0 and "Stopped" in stopped.stdout
    assert not (workdir / ".culturebridge" / "pgdata" / "postmaster.pid").exists()
    assert "No embedded PostgreSQL runs" in culturebridge("db", "stop").stdout


@pytest.mark.slow
def test_after_instance_init_two_runs_started_at_once_on_a_new_dagster_home_both_succeed(
    workdir: Path, user_env: Callable
) -> None:
    home = workdir / "dagster_home"  # not made yet: init makes it
    env = user_env(DAGSTER_HOME=str(home))
    inits = [
        subprocess.Popen([str(CULTUREBRIDGE), "instance", "init"], cwd=workdir, env=env, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    assert [p.wait(120) for p in inits] == [0, 0]  # concurrent inits are safe: they take turns
    dagster = [str(CULTUREBRIDGE.with_name("dagster")), "asset", "materialize", "-m", "culturebridge_migration"]
    runs = [
        subprocess.Popen(
            [*dagster, "--select", "bubble/users"], cwd=workdir, env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(300), p.stderr.read()) for p in runs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes[0][1][-2000:] + outcomes[1][1][-2000:]
    assert "more than one head" not in "".join(err for _, err in outcomes)
    later = subprocess.run([*dagster, "--select", "bubble/users"], cwd=workdir, env=env, capture_output=True)
    assert later.returncode == 0
