"""Pytest fixtures for real S3 Object Lock servers (Ceph RGW, SeaweedFS).

Each server is started once per test session by :mod:`tests.s3servers` and stopped by
PID at the end. ``s3`` is parametrised over both; a test using it runs once per
server. When a server's binaries are missing the tests skip with the reason — unless
``STRONGROOM_REQUIRE_S3=1`` (``make test`` sets it), where that is a failure: CI must
never pass by skipping the real servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.s3servers import S3Server, start_ceph, start_seaweed, stop, unavailable


@dataclass(frozen=True)
class S3Target:
    """A running server and an Object Lock bucket on it."""

    server: S3Server
    bucket: str

    @property
    def name(self) -> str:
        return self.server.name

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.server.endpoint,
            region_name=self.server.region,
            aws_access_key_id=self.server.access_key,
            aws_secret_access_key=self.server.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def url(self, prefix: str = "", bucket: str | None = None) -> str:
        """A store URL; credentials go through the environment (:meth:`env`)."""
        b = bucket or self.bucket
        return f"s3://{b}/{prefix}?endpoint={self.server.endpoint}&region={self.server.region}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_DEFAULT_REGION": self.server.region,
        }

    def new_bucket(self, lock: bool = True, versioning: bool = False) -> str:
        name = f"sr-{uuid.uuid4().hex[:16]}"
        c = self.client()
        c.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        if versioning and not lock:
            c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


def _start(name: str, workdir: Any) -> S3Server:
    return start_ceph(workdir) if name == "ceph" else start_seaweed(workdir)


@pytest.fixture(scope="session", params=["seaweed", "ceph"])
def s3_server(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[S3Server]:
    name = str(request.param)
    why = unavailable(name)
    if why is not None:
        if os.environ.get("STRONGROOM_REQUIRE_S3") == "1":
            pytest.fail(f"{name} is required (STRONGROOM_REQUIRE_S3=1) but {why}")
        pytest.skip(f"{name} not available: {why}")
    server = _start(name, tmp_path_factory.mktemp(f"s3-{name}"))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="session")
def s3_session(s3_server: S3Server) -> S3Target:
    target = S3Target(s3_server, "")
    return S3Target(s3_server, target.new_bucket())


@pytest.fixture
def s3(s3_session: S3Target, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """The session's server and lock bucket, with its credentials in the environment."""
    for k, v in s3_session.env().items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    return s3_session


def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
