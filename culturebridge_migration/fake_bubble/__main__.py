"""python -m culturebridge_migration.fake_bubble: serve a data set with Bubble's Data API on loopback."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from culturebridge_migration.fake_bubble.sample import files_for, sample_server_args
from culturebridge_migration.fake_bubble.server import FakeBubble
from culturebridge_migration.sources.sample_data import generate_sample


def load_dir(data_dir: Path) -> dict[str, list[dict]]:
    """A folder of TYPE.jsonl files, one thing a line."""
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for path in sorted(data_dir.glob("*.jsonl"))
    }


def _data_dir_args(data_dir: Path) -> dict:
    """A data set from a folder, with a generated file for every Bubble-hosted file its records link."""
    data = load_dir(data_dir)
    return {"data": data, "files": files_for(data)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="dev-key", help="the bearer token clients must send")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every request (real Bubble: ~0.15)"
    )
    parser.add_argument("--data-dir", type=Path, help="folder of TYPE.jsonl files; default: the bundled sample")
    parser.add_argument(
        "--test-data-dir", type=Path, help="folder of TYPE.jsonl files for version-test; default: empty"
    )
    parser.add_argument("--users", type=int, default=300, help="size of the bundled sample")
    parser.add_argument("--rate-limit", type=int, help="requests per minute before answering 429")
    parser.add_argument("--hide-meta", action="store_true", help='answer /meta 404, as "Hide Swagger API docs" does')
    args = parser.parse_args(argv)
    served = sample_server_args(generate_sample(args.users)) if args.data_dir is None else _data_dir_args(args.data_dir)
    test_data = load_dir(args.test_data_dir) if args.test_data_dir else None
    server = FakeBubble(
        **served,
        test_data=test_data,
        api_key=args.api_key,
        port=args.port,
        latency=args.latency,
        rate_limit_per_minute=args.rate_limit,
        hide_meta=args.hide_meta,
    ).start()
    counts = ", ".join(f"{t}: {len(r)}" for t, r in served["data"].items())
    # Flushed: a parent reading the first line through a pipe must not wait for a buffer to fill.
    print(f"Bubble Data API on {server.url} ({counts})", flush=True)
    print(
        f"version-test on {server.test_url}; {len(served.get('files', {}))} files under {server.files_url}", flush=True
    )
    if server.passwords:
        print(
            f"login workflow: POST {server.url}/wf/{server.login_workflow} (each sample user's password: "
            "fake_bubble/sample.py's sample_login_password)",
            flush=True,
        )
    print(f"BUBBLE_API_URL={server.url} BUBBLE_API_KEY=<the --api-key value>; Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
