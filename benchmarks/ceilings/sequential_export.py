"""One type exported again by a fresh client fetching one page at a time, against the migration's export rate."""

from __future__ import annotations

import time

from benchmarks.harness.bubble import API_KEY
from benchmarks.report import SequentialExport
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.bubble_api import BubbleClient


def sequential_export(bubble_url: str, entity_name: str, ours: float) -> SequentialExport:
    """`ours` is the export step's records/s over every type: the types share one bound on requests in
    flight, so one type's own time says little about paging.
    """
    client = BubbleClient(bubble_url, API_KEY, workers=1)
    try:
        clock = time.perf_counter()
        result = client.export(ENTITIES[entity_name].bubble_type)
        seconds = time.perf_counter() - clock
    finally:
        client.close()
    count = len(result.records)
    rate = count / seconds
    return SequentialExport(entity_name, count, seconds, rate, ours, ours / rate if ours else None)
