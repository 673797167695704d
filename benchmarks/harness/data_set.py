"""The generated data set: `generate_sample` run in a child process, written as TYPE.jsonl files.

A child of its own, so its memory is never counted as the migration's; a spawned one, so it does not
start as a copy of this process.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from benchmarks.harness.memory import own_peak_rss_mb
from benchmarks.harness.waiting import GaveUp
from benchmarks.report import DataSet
from culturebridge_migration.mapping.entities import ENTITIES, Kind
from culturebridge_migration.mapping.passwords import bcrypt_cost
from culturebridge_migration.sources.sample_data import generate_sample


@dataclass(frozen=True)
class Scale:
    """Records generated per type (profiles follow the users), the generator's seed and legacy password share."""

    users: int
    bookings: int
    payments: int
    posts: int
    comments: int
    resources: int
    seed: int
    legacy_share: float


def count_plain_passwords(users: list[dict]) -> int:
    """Users whose legacy password is plain text: what a first export must bcrypt-hash."""
    keys = [f.source for f in ENTITIES["users"].fields if f.kind is Kind.PASSWORD]
    return sum(1 for user in users for key in keys if user.get(key) and bcrypt_cost(str(user[key])) is None)


def write_data_set(scale: dict[str, float], folder: str) -> DataSet:
    """Generate the data set into `folder`. Runs in the child."""
    clock = time.perf_counter()
    sample = generate_sample(
        int(scale["users"]),
        bookings=int(scale["bookings"]),
        payments=int(scale["payments"]),
        posts=int(scale["posts"]),
        comments=int(scale["comments"]),
        resources=int(scale["resources"]),
        seed=int(scale["seed"]),
        legacy_password_share=scale["legacy_share"],
    )
    seconds = time.perf_counter() - clock
    for name, records in sample.records.items():
        with (Path(folder) / f"{ENTITIES[name].bubble_type}.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(r) + "\n" for r in records)
    by_entity = {name: len(records) for name, records in sample.records.items()}
    return DataSet(
        generate_seconds=seconds,
        records=sum(by_entity.values()),
        by_entity=by_entity,
        plain_passwords=count_plain_passwords(sample.records["users"]),
        generator_peak_rss_mb=own_peak_rss_mb(),
    )


def _child(scale: dict[str, float], folder: str, results: Connection) -> None:
    """The child's body: the data set, or the exception that stopped it, sent back through the pipe."""
    try:
        results.send(write_data_set(scale, folder))
    except BaseException as exc:
        results.send(exc)
        raise


def generate_data_set(scale: Scale, folder: Path, timeout: float) -> DataSet:
    """The data set written into `folder` by a spawned child, which is ended if it overruns `timeout`.

    A plain process, not a pool: a child killed by the kernel (out of memory) fails the wait at once.
    """
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(asdict(scale), str(folder), sending), name="data generator")
    child.start()
    sending.close()  # the child holds the other end: its exit closes the pipe
    try:
        if not receiving.poll(timeout):
            raise GaveUp(f"gave up after {timeout:g}s waiting for the data generator (a child process)")
        try:
            outcome = receiving.recv()
        except EOFError:  # the pipe closed with nothing in it: the child was killed
            child.join(5)
            raise RuntimeError(f"the data generator died (exit code {child.exitcode})") from None
    finally:
        child.terminate()
        child.join(30)
    if isinstance(outcome, BaseException):
        raise RuntimeError("the data generator failed") from outcome
    return outcome
