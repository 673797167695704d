"""Benchmark of the file copier: concurrent copy vs a sequential download, and its memory.

    python -m benchmarks.files_copy [--files 20000 --min-kb 30 --max-kb 200 --latency 0.15 --workers 8]
    python -m benchmarks.files_copy --files 500 --sequential-files 100 --large-files 2 --large-mb 20   # ~1 minute

One invocation: generate files of random bytes (in a child process, so their bytes never count in
this process's memory) and put them on the local Bubble server (a process of its own, as Bubble is);
copy them all with `FileCopier` into a folder (or `--target s3://bucket/prefix`); download some of
the same files one after another with a plain `requests.Session` for the baseline; then copy a few
large files, to show the copier's memory does not grow with file size. Every copied file's sha256 is
compared with what the server was given.

The server's `--latency` delays Data API answers only, not file downloads; the latency of a file
request is a `slow` fault armed for every download (it waits, then answers normally).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.synchronize import Event
from pathlib import Path

import requests

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.files import file_key
from culturebridge_migration.files.copier import DEFAULT_WORKERS, FileCopier
from culturebridge_migration.files.storage import open_storage
from culturebridge_migration.mapping.values import normalize_url

CDN_HOST = "5e1f0c2a9b8d7e6f4a3b2c1d0e9f8a7b.cdn.bubble.io"
FOREVER = 10**9  # a fault armed for every request the benchmark will make


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=20_000, help="files generated and copied")
    p.add_argument("--min-kb", type=int, default=30, help="smallest file, KB")
    p.add_argument("--max-kb", type=int, default=200, help="largest file, KB")
    p.add_argument("--latency", type=float, default=0.15, help="seconds the server waits before each file answer")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="downloads at once (the copier's default)")
    p.add_argument(
        "--sequential-files",
        type=int,
        default=1_000,
        help="how many of the same files the sequential baseline downloads (0: all; 20,000 take 50 min at 150 ms)",
    )
    p.add_argument("--large-files", type=int, default=4, help="large files copied to compare the peak memory")
    p.add_argument("--large-mb", type=int, default=50, help="size of each large file, MB")
    p.add_argument("--target", help="a folder or s3://bucket/prefix (AWS_* variables); default: a temporary folder")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    return p.parse_args(argv)


# -- files on the server (in a child process) ---------------------------------------------------------
def bubble_url(n: int) -> str:
    """Half the files on Bubble's S3 bucket, half on an app's CDN host, as Bubble writes them."""
    if n % 2:
        return f"//s3.amazonaws.com/appforest_uf/f{1_690_000_000 + n}/photo-{n}.jpg"
    return f"//{CDN_HOST}/f1699999999999x{n:018d}/resource-{n}.pdf"


def put_files(files_api: str, first: int, count: int, min_bytes: int, max_bytes: int, seed: int) -> dict[str, str]:
    """Put `count` files of random bytes on the server; their sha256 by Bubble URL. Runs in a child process."""
    rng = random.Random(seed)
    sizes = [rng.randint(min_bytes, max_bytes) for _ in range(count)]
    session = requests.Session()

    def put(n: int) -> tuple[str, str]:
        url, content = bubble_url(first + n), random.Random(seed * 1_000_003 + n).randbytes(sizes[n])
        session.post(f"{files_api}/{file_key(url)}", data=content).raise_for_status()
        return url, hashlib.sha256(content).hexdigest()

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(put, range(count)))


def served_files(files_api: str, first: int, count: int, min_bytes: int, max_bytes: int, seed: int) -> dict[str, str]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(put_files, files_api, first, count, min_bytes, max_bytes, seed).result()


# -- the local Bubble server, in a process of its own ---------------------------------------------------
def serve(ports: multiprocessing.Queue, stop: Event) -> None:
    with FakeBubble() as server:
        ports.put(server.port)
        stop.wait()


@contextmanager
def bubble_server() -> Iterator[str]:
    """The root URL of a FakeBubble serving in a child process (its threads must not compete for our GIL)."""
    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    process = context.Process(target=serve, args=(ports, stop), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=60)}"
    finally:
        stop.set()
        process.join(timeout=30)


def arm_latency(server: str, seconds: float) -> None:
    if seconds > 0:
        fault = {"kind": "slow", "times": FOREVER, "file": "*", "seconds": seconds}
        requests.post(f"{server}/_fake/faults", json=fault).raise_for_status()


# -- memory ---------------------------------------------------------------------------------------------
def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """The highest RSS seen (sampled every 20 ms) while the block runs, and the RSS it started from."""
    figures = {"before_mb": rss_mb(), "peak_mb": rss_mb()}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            figures["peak_mb"] = max(figures["peak_mb"], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield figures
    finally:
        done.set()
        sampler.join()
        figures["peak_mb"] = max(figures["peak_mb"], rss_mb())


# -- the runs -------------------------------------------------------------------------------------------
@dataclass
class Pass:
    files: int
    megabytes: float
    seconds: float
    identical: bool | None = None  # every sha256 equal to what the server was given
    peak_rss_mb: float | None = None
    rss_before_mb: float | None = None

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.megabytes / self.seconds

    def figures(self) -> dict:
        return {**asdict(self), "files_per_second": self.files_per_second, "mb_per_second": self.mb_per_second}


def copy_pass(target: str, server: str, expected: dict[str, str], workers: int) -> Pass:
    files_api = f"{server}/_files"
    storage = open_storage(target)
    with (
        FileCopier(storage, workers=workers, files_url=files_api) as copier,
        peak_rss() as memory,
    ):
        started = time.perf_counter()
        results = dict(copier.copy(expected))
        seconds = time.perf_counter() - started
    identical = all(results[url].sha256 == digest for url, digest in expected.items())
    megabytes = sum(result.bytes or 0 for result in results.values()) / 1e6
    return Pass(len(results), megabytes, seconds, identical, memory["peak_mb"], memory["before_mb"])


def sequential_pass(folder: Path, server: str, urls: list[str]) -> Pass:
    """The baseline: one session, one file after another, each body written to a file."""
    files_api, total = f"{server}/_files", 0
    session = requests.Session()
    started = time.perf_counter()
    for n, url in enumerate(urls):
        response = session.get(f"{files_api}/{file_key(normalize_url(url))}", timeout=60)
        response.raise_for_status()
        (folder / f"{n}.bin").write_bytes(response.content)
        total += len(response.content)
    return Pass(len(urls), total / 1e6, time.perf_counter() - started)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="cb_files_bench_") as scratch, bubble_server() as server:
        files_api = f"{server}/_fake/files"
        started = time.perf_counter()
        small = served_files(files_api, 0, args.files, args.min_kb * 1000, args.max_kb * 1000, args.seed)
        large_bytes = args.large_mb * 1_000_000
        large = served_files(files_api, args.files, args.large_files, large_bytes, large_bytes, args.seed + 1)
        setup_seconds = time.perf_counter() - started
        arm_latency(server, args.latency)
        baseline_folder = Path(scratch, "sequential")
        baseline_folder.mkdir()
        concurrent = copy_pass(args.target or str(Path(scratch, "copied")), server, small, args.workers)
        sequential = sequential_pass(baseline_folder, server, list(small)[: args.sequential_files or None])
        big = copy_pass(args.target or str(Path(scratch, "copied")), server, large, args.workers) if large else None
        return {
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "setup_seconds": setup_seconds,
            "concurrent": concurrent.figures(),
            "sequential": sequential.figures(),
            "speedup_files_per_second": concurrent.files_per_second / sequential.files_per_second,
            "large_files": big.figures() if big else None,
            "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def report(figures: dict) -> str:
    settings, concurrent, sequential = figures["settings"], figures["concurrent"], figures["sequential"]
    lines = [
        f"{concurrent['files']} files, {concurrent['megabytes']:.0f} MB ({settings['min_kb']}-{settings['max_kb']} KB), "
        f"{settings['latency'] * 1000:.0f} ms per request, {settings['workers']} workers",
        f"  copier:     {concurrent['files_per_second']:8.1f} files/s {concurrent['mb_per_second']:8.2f} MB/s "
        f"({concurrent['seconds']:.1f} s; byte-identical: {concurrent['identical']})",
        f"  sequential: {sequential['files_per_second']:8.1f} files/s {sequential['mb_per_second']:8.2f} MB/s "
        f"({sequential['files']} of the same files, {sequential['seconds']:.1f} s)",
        f"  speedup: {figures['speedup_files_per_second']:.1f}x",
        f"  peak RSS while copying them: {concurrent['peak_rss_mb']:.0f} MB (from {concurrent['rss_before_mb']:.0f} MB)",
    ]
    if big := figures["large_files"]:
        lines.append(
            f"  {big['files']} files of {settings['large_mb']} MB: peak RSS {big['peak_rss_mb']:.0f} MB "
            f"(from {big['rss_before_mb']:.0f} MB), {big['mb_per_second']:.1f} MB/s, byte-identical: {big['identical']}"
        )
    lines.append(f"  process peak RSS (ru_maxrss): {figures['process_peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures = run(args)
    print(report(figures))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
