"""bcrypt: the export's hashing pool timed on the data's plain passwords, against cost-12 hashes on one core."""

from __future__ import annotations

import os
import time

import bcrypt

from benchmarks.report import BcryptCeiling, Hashing
from culturebridge_migration.mapping.passwords import BCRYPT_COST, secure_passwords

SINGLE_CORE_HASHES = 4


def measure_hashing(count: int, workers: int | None, reported_by_export: int) -> Hashing:
    """`secure_passwords` of `count` plain passwords on the pool the export uses."""
    threads = workers or os.cpu_count() or 2
    if count <= 0:
        return Hashing(0, 0.0, None, threads, reported_by_export)
    plain = [f"bench-legacy-{i}-{i * 7919 % 10**6:06d}" for i in range(count)]
    clock = time.perf_counter()
    secure_passwords(plain, workers=workers)
    seconds = time.perf_counter() - clock
    return Hashing(count, seconds, count / seconds, threads, reported_by_export)


def bcrypt_ceiling(pool_rate: float | None) -> BcryptCeiling:
    """Cost-12 hashes per second on one core, times the cores, against the pool's measured rate."""
    clock = time.perf_counter()
    for i in range(SINGLE_CORE_HASHES):
        bcrypt.hashpw(f"single-core-{i}".encode(), bcrypt.gensalt(BCRYPT_COST))
    single = SINGLE_CORE_HASHES / (time.perf_counter() - clock)
    cores = os.cpu_count() or 1
    return BcryptCeiling(
        cost=BCRYPT_COST,
        single_core_hashes_per_second=single,
        cores=cores,
        ceiling_hashes_per_second=single * cores,
        pool_hashes_per_second=pool_rate,
        ratio=pool_rate / (single * cores) if pool_rate else None,
    )
