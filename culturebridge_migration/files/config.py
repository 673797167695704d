"""Where files go and which URLs are Bubble's, from the environment (DESIGN.md, "Files").

| variable | meaning | default |
|---|---|---|
| `MIGRATION_FILES_URL` | an S3-compatible bucket, `s3://bucket/prefix` (AWS_* variables for endpoint, region, keys) | |
| `MIGRATION_FILES_DIR` | a local folder, when no bucket is given | `./migration_files` |
| `MIGRATION_FILES_PUBLIC_URL` | the base URL Phase 2 links to (a CDN in front of the bucket) | the folder's file:// URL, or the bucket's |
| `MIGRATION_FILES_HOSTS` | comma-separated host patterns of Bubble's files | `s3.amazonaws.com/appforest_uf/,*.cdn.bubble.io` |
| `MIGRATION_FILE_WORKERS` | downloads at once | `8` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from culturebridge_migration.files.copier import DEFAULT_WORKERS
from culturebridge_migration.files.storage import DEFAULT_FILES_DIR, FileStorage, open_storage
from culturebridge_migration.files.urls import DEFAULT_FILE_HOST_PATTERNS, BubbleFileMatcher


@dataclass(frozen=True)
class FilesConfig:
    target: str = DEFAULT_FILES_DIR  # a folder, or s3://bucket/prefix
    public_base_url: str | None = None
    host_patterns: tuple[str, ...] = DEFAULT_FILE_HOST_PATTERNS
    workers: int = DEFAULT_WORKERS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> FilesConfig:
        hosts = [pattern.strip() for pattern in env.get("MIGRATION_FILES_HOSTS", "").split(",") if pattern.strip()]
        workers = env.get("MIGRATION_FILE_WORKERS", "").strip()
        if workers and not (workers.isdigit() and int(workers) > 0):
            raise ValueError(f"MIGRATION_FILE_WORKERS must be a positive whole number, not {workers!r}")
        return cls(
            target=env.get("MIGRATION_FILES_URL") or env.get("MIGRATION_FILES_DIR") or DEFAULT_FILES_DIR,
            public_base_url=env.get("MIGRATION_FILES_PUBLIC_URL") or None,
            host_patterns=tuple(hosts) or DEFAULT_FILE_HOST_PATTERNS,
            workers=int(workers) if workers else DEFAULT_WORKERS,
        )

    def storage(self, env: Mapping[str, str] = os.environ) -> FileStorage:
        return open_storage(self.target, public_base_url=self.public_base_url, env=env)

    def matcher(self) -> BubbleFileMatcher:
        return BubbleFileMatcher(self.host_patterns)
