"""python -m culturebridge_migration.fake_bubble: serve a data set with Bubble's Data API on loopback."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from culturebridge_migration.fake_bubble.server import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES


def load_data(data_dir: Path | None, users: int) -> dict[str, list[dict]]:
    if data_dir is None:
        from culturebridge_migration.sources.sample_data import generate_sample

        sample = generate_sample(users)
        return {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for path in sorted(data_dir.glob("*.jsonl"))
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="dev-key", help="the bearer token clients must send")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every request (real Bubble: ~0.15)"
    )
    parser.add_argument("--data-dir", type=Path, help="folder of TYPE.jsonl files; default: the bundled sample")
    parser.add_argument("--users", type=int, default=300, help="size of the bundled sample")
    parser.add_argument("--rate-limit", type=int, help="requests per minute before answering 429")
    args = parser.parse_args(argv)
    data = load_data(args.data_dir, args.users)
    server = FakeBubble(
        data, api_key=args.api_key, port=args.port, latency=args.latency, rate_limit_per_minute=args.rate_limit
    ).start()
    counts = ", ".join(f"{t}: {len(r)}" for t, r in data.items())
    print(f"Bubble Data API on {server.url} ({counts})")
    print(f"BUBBLE_API_URL={server.url} BUBBLE_API_KEY=<the --api-key value>; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
