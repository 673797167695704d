"""`culturebridge capture install | remove | status` on a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from culturebridge_migration.cli import main

pytestmark = pytest.mark.integration


def sign_up(database_url: str, email: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as app:
        app.execute(
            "INSERT INTO users (email, role, created_at, updated_at) VALUES (%s, 'client', now(), now())", (email,)
        )


def test_capture_command_installs_reports_and_removes_the_capture(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["capture", "install"]) == 0
    assert main(["capture", "install"]) == 0  # twice: harmless
    sign_up(database_url, "n1@x.io")
    assert main(["capture", "status"]) == 0
    assert main(["capture", "remove"]) == 0
    sign_up(database_url, "n2@x.io")
    assert main(["capture", "status"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert "capture on: bookings, client_profiles" in lines[1]
    statuses = [line for line in lines if line.startswith("capture on:")]
    assert statuses[2].endswith("1 change(s) captured") and statuses[-1] == "capture on: none; 1 change(s) captured"
