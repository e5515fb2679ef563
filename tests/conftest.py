"""Shared fixtures: a controllable clock, vault factories, the CLI runner.

Hypothesis runs derandomised when CI is set (STYLE.md: derandomised profile in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from strongroom.core.retention import Policy
from strongroom.crypto import new_key_file_text
from strongroom.store.base import RetentionMode
from strongroom.vault.vault import Options, Secret, Vault

pytest_plugins = ["tests.s3fixtures", "tests.pgfixtures"]  # real servers, started once per session

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

PASSPHRASE = "correct horse battery staple"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeTime:
    """A system clock tests can move, forwards or backwards."""

    def __init__(self, start: datetime = START) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t

    def advance(self, delta: timedelta) -> None:
        self.t += delta

    def set(self, t: datetime) -> None:
        self.t = t


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@dataclass
class VaultFactory:
    path: Path
    clock: FakeTime
    policy: Policy

    def options(self, **kw: object) -> Options:
        opts = Options(
            actor="user:test", policy=self.policy, now=self.clock.now, kdf_strength="test"
        )
        for k, v in kw.items():
            setattr(opts, k, v)
        return opts

    def create(self, mode: RetentionMode = RetentionMode.COMPLIANCE, **kw: object) -> Vault:
        return Vault.create(str(self.path), Secret(passphrase=PASSPHRASE), self.options(**kw), mode)

    def open(self, **kw: object) -> Vault:
        return Vault.open(str(self.path), Secret(passphrase=PASSPHRASE), self.options(**kw))


@pytest.fixture
def vaults(tmp_path: Path, clock: FakeTime) -> VaultFactory:
    """A vault location under tmp_path with a fake clock; call .create() then .open()."""
    return VaultFactory(tmp_path / "vault", clock, Policy())


@pytest.fixture
def vault(vaults: VaultFactory) -> Iterator[Vault]:
    v = vaults.create()
    try:
        yield v
    finally:
        v.close()


@dataclass
class Cli:
    """Runs the real ``strongroom`` console script in a subprocess."""

    vault: Path
    key_file: Path
    env: dict[str, str]

    def __call__(
        self,
        *args: str | Path,
        input: bytes | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "strongroom",
            "--vault",
            str(self.vault),
            "--key-file",
            str(self.key_file),
            *map(str, args),
        ]
        p = subprocess.run(
            cmd, input=input, capture_output=True, env=self.env, timeout=timeout, check=False
        )
        if check and p.returncode != 0:
            raise AssertionError(
                f"{cmd} exited {p.returncode}\nstdout: {p.stdout!r}\n"
                f"stderr: {p.stderr.decode(errors='replace')}"
            )
        return p


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A CLI bound to a new vault (initialised with a key file)."""
    key = tmp_path / "vault.key"
    key.write_text(new_key_file_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    c = Cli(tmp_path / "vault", key, env)
    c("init")
    return c
