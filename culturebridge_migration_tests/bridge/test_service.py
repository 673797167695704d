"""The bridge over HTTP: the shared secret, the answers a backend reads, and the command that serves it."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from culturebridge_migration.bridge.service import BridgeService
from culturebridge_migration.cli import main
from culturebridge_migration.fake_bubble import FakeBubble

pytestmark = pytest.mark.integration
SECRET = "s3cret-shared-with-the-backend-0123"


@pytest.fixture
def service(make_bridge: Callable) -> Iterator[BridgeService]:
    with BridgeService(make_bridge(), SECRET) as running:
        yield running


def post(url: str, body: object, secret: str | None = SECRET, **headers: str) -> requests.Response:
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return requests.post(f"{url}/v1/login", json=body, headers=headers, timeout=15)


def test_every_request_needs_the_secret(service: BridgeService, people: SimpleNamespace) -> None:
    credentials = {"email": people.plain_email, "password": people.plain_password}
    assert post(service.url, credentials, secret=None).status_code == 401
    assert post(service.url, credentials, secret="not-the-secret-at-all").status_code == 401
    assert requests.get(f"{service.url}/v1/health", timeout=5).status_code == 401
    health = requests.get(f"{service.url}/v1/health", headers={"Authorization": f"Bearer {SECRET}"}, timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["window_closes_at"]


def test_login_answers_200_with_the_phase2_id_401_429_and_503(
    service: BridgeService, bubble: FakeBubble, people: SimpleNamespace, rows: Callable
) -> None:
    bubble.add_fault("500", bubble_type="wf/culturebridge_login", status=502)
    down = post(service.url, {"email": people.plain_email, "password": people.plain_password})
    assert (down.status_code, down.json()) == (503, {"error": "bubble_unavailable"})
    assert down.headers["Retry-After"] == "5"
    ok = post(service.url, {"email": people.plain_email, "password": people.plain_password})
    [(user_id,)] = rows(f"SELECT id FROM users WHERE bubble_id = '{people.plain_id}'")
    assert (ok.status_code, ok.json()) == (200, {"user_id": user_id})
    for _ in range(3):
        wrong = post(service.url, {"email": people.plain_email, "password": "nope"}, **{"X-Forwarded-For": "192.0.2.1"})
        assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_credentials"})
    unknown = post(service.url, {"email": "nobody@example.com", "password": "nope"})
    assert (unknown.status_code, unknown.json()) == (401, {"error": "invalid_credentials"})
    limited = post(service.url, {"email": people.plain_email, "password": people.plain_password})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert post(service.url, {"email": people.plain_email}).status_code == 400
    assert rows("SELECT DISTINCT source FROM migration.password_bridge_attempts WHERE outcome = 'wrong_password'") == [
        ("192.0.2.1",)
    ]


def test_the_window_closed_is_410(make_bridge: Callable, people: SimpleNamespace) -> None:
    with BridgeService(make_bridge(until=datetime(2020, 1, 1, tzinfo=UTC)), SECRET) as service:
        closed = post(service.url, {"email": people.plain_email, "password": people.plain_password})
    assert (closed.status_code, closed.json()) == (410, {"error": "password_reset_required"})


def test_the_command_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("MIGRATION_PASSWORD_BRIDGE_SECRET", raising=False)
    assert main(["password-bridge", "serve", "--port", "0"]) == 1
    assert "MIGRATION_PASSWORD_BRIDGE_SECRET" in capsys.readouterr().err


def test_the_password_is_in_no_log_table_or_file_after_a_served_run(
    phase2: str, bubble: FakeBubble, people: SimpleNamespace, tmp_path: Path, rows: Callable
) -> None:
    """`culturebridge password-bridge serve` in a subprocess, its log kept; then grep everything for the passwords."""
    wrong = "wrong-Zebra-7781-guess"
    env = {
        **os.environ,
        "DATABASE_URL": phase2,
        "BUBBLE_API_URL": bubble.url,
        "BUBBLE_API_KEY": "bridge-test-key",
        "MIGRATION_PASSWORD_BRIDGE_SECRET": SECRET,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    log = tmp_path / "bridge.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "culturebridge_migration.cli", "password-bridge", "serve", "--port", "0"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=out, text=True,
        )  # fmt: skip
        try:
            url = server.stdout.readline().split(" on ")[1].split()[0]
            assert post(url, {"email": people.plain_email, "password": wrong}).status_code == 401
            assert post(url, {"email": people.plain_email, "password": people.plain_password}).status_code == 200
            assert post(url, {"email": people.plain_email, "password": people.plain_password}).status_code == 200
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=20) == 0
    text = log.read_text() + server.stdout.read()
    assert "/v1/login" in text  # the log is there, and has requests in it
    dump = "\n".join(str(row) for table in _tables(rows) for row in rows(f"SELECT t::text FROM {table} t"))
    assert people.plain_email in dump  # the dump is real: it holds the users
    files = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    for secret in (people.plain_password, wrong):
        assert secret not in text and secret not in dump and secret not in files


def _tables(rows: Callable) -> list[str]:
    return [
        f'"{schema}"."{name}"'
        for schema, name in rows(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    ]


def test_try_reads_the_password_from_the_terminal_and_says_by_which_path_the_user_logs_in(
    phase2: str, bubble: FakeBubble, people: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", phase2)
    monkeypatch.setenv("BUBBLE_API_URL", bubble.url)
    monkeypatch.setenv("BUBBLE_API_KEY", "bridge-test-key")
    typed = iter([people.plain_password, people.plain_password, "wrong-one"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(typed))  # the terminal
    assert main(["password-bridge", "try", people.plain_email]) == 0
    assert "checked by Bubble" in capsys.readouterr().out
    assert main(["password-bridge", "try", people.plain_email]) == 0
    assert "hash Phase 2 holds" in capsys.readouterr().out
    assert main(["password-bridge", "try", people.plain_email]) == 1
    out = capsys.readouterr().out
    assert "wrong password" in out and people.plain_password not in out
