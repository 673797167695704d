"""The operator's view, in a real browser: `dagster dev`, "Materialize all", the check dashboards, the HTML report.

Screenshots land in test-artifacts/ (kept by CI as artifacts).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def dagster_dev(workdir: Path, user_env):
    tmp_path = workdir  # its embedded server is stopped after the test
    port = free_port()
    (tmp_path / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n      module_name: culturebridge_migration.definitions\n"
        f"      working_directory: {tmp_path}\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = user_env(DAGSTER_HOME=str(home))
    dagster = Path(sys.executable).with_name("dagster")
    server = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "dagster_dev.log", "w"),  # noqa: SIM115 - closed with the process
        start_new_session=True,  # dagster dev may ignore SIGTERM: kill its whole group
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                status = graphql(
                    port,
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
                )
                entries = status["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            pytest.fail(
                "dagster dev did not load the code location: " + (tmp_path / "dagster_dev.log").read_text()[-2000:]
            )
        yield port, tmp_path
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_operator_materializes_everything_and_reads_checks_and_report(dagster_dev) -> None:
    from playwright.sync_api import expect, sync_playwright

    port, workdir = dagster_dev
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The first-visit community dialog can open at any moment while the graph loads: whenever it
        # covers the page, Playwright dismisses it before the next action.
        skip = page.get_by_role("button", name="Skip")
        page.add_locator_handler(skip, lambda dialog: dialog.click())
        page.goto(f"{base}/asset-groups", wait_until="networkidle")
        expect(page.get_by_role("button", name="Materialize all").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "00_asset_graph.png"))
        page.get_by_role("button", name="Materialize all").first.click(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "01_materialize_all.png"))

        run = _wait_for_run(port)
        assert run["status"] == "SUCCESS", run
        page.goto(f"{base}/runs/{run['id']}", wait_until="networkidle")
        expect(page.get_by_text("Success").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "02_run_succeeded.png"))

        page.goto(f"{base}/assets/phase2/client_profiles?view=checks", wait_until="networkidle")
        expect(page.get_by_text("clients_have_profiles").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("row_counts").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "03_client_profile_checks.png"), full_page=True)

        (report,) = (workdir / "migration_reports").glob("report_*.html")
        page.goto(report.resolve().as_uri())
        expect(page.locator("#status")).to_have_text("SUCCESS")
        page.screenshot(path=str(ARTIFACTS / "04_html_report.png"), full_page=True)
        browser.close()
    checks = graphql(
        port,
        '{ assetNodeOrError(assetKey: {path: ["phase2", "client_profiles"]}) { ... on AssetNode { assetChecksOrError '
        "{ ... on AssetChecks { checks { name executionForLatestMaterialization { evaluation { success } } } } } } } }",
    )
    outcomes = {
        c["name"]: c["executionForLatestMaterialization"]["evaluation"]["success"]
        for c in checks["data"]["assetNodeOrError"]["assetChecksOrError"]["checks"]
    }
    assert outcomes["clients_have_profiles"] is False and outcomes["row_counts"] is True


def _wait_for_run(port: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = graphql(port, "{ runsOrError { ... on Runs { results { id: runId status } } } }")
        results = runs["data"]["runsOrError"]["results"]
        if results and results[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return results[0]
        time.sleep(2)
    pytest.fail("the run launched from the UI did not finish")
