"""The file tests' world: the local Bubble server with files, a temporary folder, and a bucket on a real S3 API on
loopback (moto's server mode)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.files.storage import FileStorage, LocalFolderStorage, s3_storage

S3_REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_REGION": S3_REGION,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
    }


@pytest.fixture
def s3_bucket(s3_env: dict[str, str]) -> str:
    """A new, empty bucket."""
    import boto3

    name = f"files-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name=S3_REGION,
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["folder", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> FileStorage:
    """The same tests on a local folder and on an S3 bucket (under a prefix, as a real deployment would)."""
    if request.param == "folder":
        return LocalFolderStorage(tmp_path / "files", public_base_url="https://files.example.org/bubble")
    bucket, env = request.getfixturevalue("s3_bucket"), request.getfixturevalue("s3_env")
    return s3_storage(f"s3://{bucket}/migrated", public_base_url="https://files.example.org/bubble", env=env)


@pytest.fixture
def bubble() -> Iterator[FakeBubble]:
    """The local Bubble server, serving files at its own address."""
    with FakeBubble() as server:
        yield server
