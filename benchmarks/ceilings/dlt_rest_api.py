"""The same types through a dlt `rest_api` pipeline into the same PostgreSQL server (`dlt_bench` schema).

Bubble's paging for dlt: `cursor` offset, records under `response.results`, stop at
`response.remaining == 0`. It does less than the migration (no mapping, hashing, checks, rejects or
row history) and, as a naive offset paginator, stops silently at Bubble's 50,000-item search cap.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from benchmarks.harness.bubble import API_KEY
from benchmarks.report import DltFailed, DltFigures, MigrationFigures
from culturebridge_migration.mapping.entities import ENTITIES

MISSING = "dlt: not installed (pip install -e '.[bench]' would add it)"


def dlt_installed() -> bool:
    try:
        import dlt  # noqa: F401
    except ImportError:
        return False
    return True


def dlt_comparison(
    bubble_url: str, database_url: str, work: Path, migration: MigrationFigures
) -> DltFigures | DltFailed | None:
    """dlt's figures against our export and load (the wall seconds either ran); None when dlt is not installed."""
    if not dlt_installed():
        return None
    ours = migration.records / migration.export_load_seconds
    try:
        return _run_dlt(bubble_url, database_url, work, migration.records, ours)
    except Exception as exc:  # a comparison must not sink the benchmark: record why it did not run
        print(f"dlt: failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", flush=True)
        return DltFailed(f"{type(exc).__name__}: {exc}"[:2000])


def _bubble_source(bubble_url: str) -> Any:
    from dlt.sources.helpers.rest_client.paginators import BasePaginator
    from dlt.sources.rest_api import rest_api_source

    class BubblePaginator(BasePaginator):
        """Bubble's paging: offset in `cursor`, stop when `response.remaining` is 0."""

        def __init__(self, limit: int = 100) -> None:
            super().__init__()
            self.limit, self.cursor = limit, 0

        def init_request(self, request: Any) -> None:
            self.cursor = 0
            request.params = {**(request.params or {}), "cursor": 0, "limit": self.limit}

        def update_state(self, response: Any, data: list | None = None) -> None:
            page = response.json()["response"]
            self.cursor = int(page["cursor"]) + int(page["count"])
            self._has_next_page = int(page["remaining"]) > 0 and int(page["count"]) > 0

        def update_request(self, request: Any) -> None:
            request.params = {**(request.params or {}), "cursor": self.cursor, "limit": self.limit}

    return rest_api_source(
        {
            "client": {"base_url": bubble_url + "/", "auth": {"type": "bearer", "token": API_KEY}},
            "resource_defaults": {
                "write_disposition": "replace",
                "endpoint": {"data_selector": "response.results", "params": {"sort_field": "Created Date"}},
            },
            "resources": [
                {"name": e.table, "endpoint": {"path": f"obj/{e.bubble_type}", "paginator": BubblePaginator()}}
                for e in ENTITIES.values()
            ],
        }
    )


def _run_dlt(bubble_url: str, database_url: str, work: Path, expected: int, ours: float) -> DltFigures:
    import dlt

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    pipeline = dlt.pipeline(
        pipeline_name=f"cb_bench_{uuid.uuid4().hex[:8]}",
        pipelines_dir=str(work / "dlt"),
        destination=dlt.destinations.postgres(credentials=dlt_credentials(database_url)),
        dataset_name="dlt_bench",
        progress=None,
    )
    phases: dict[str, float] = {}
    clock = time.perf_counter()
    pipeline.extract(_bubble_source(bubble_url))
    phases["extract"] = time.perf_counter() - clock
    pipeline.normalize()
    phases["normalize"] = time.perf_counter() - clock - phases["extract"]
    pipeline.load()
    total = time.perf_counter() - clock
    phases["load"] = total - phases["extract"] - phases["normalize"]
    counts = pipeline.last_trace.last_normalize_info.row_counts
    rows_by_table = {e.table: counts.get(e.table, 0) for e in ENTITIES.values()}
    rows = sum(rows_by_table.values())
    rate = rows / total if total else 0.0
    return DltFigures(
        version=dlt.__version__,
        seconds=total,
        phases=phases,
        rows=rows,
        expected_rows=expected,
        complete=rows == expected,
        records_per_second=rate,
        rows_by_table=rows_by_table,
        our_export_load_records_per_second=ours,
        ratio=ours / rate if rate else None,
    )


def dlt_credentials(database_url: str) -> dict[str, Any]:
    """dlt wants a host; libpq reads a host starting with / as a Unix socket folder (the local servers)."""
    params = conninfo_to_dict(database_url)
    host = params.get("host") or "localhost"
    credentials = {
        "database": params.get("dbname"),
        "username": params.get("user") or "postgres",
        "password": params.get("password") or "",
        "host": "localhost" if host.startswith("/") else host,
        "port": int(params.get("port") or 5432),
    }
    if host.startswith("/"):  # dlt drops such a host from its URL; a query parameter survives
        credentials["query"] = {"host": host}
    return credentials
