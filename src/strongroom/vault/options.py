"""Per-process settings and the secret that unlocks a vault; where its parts live.

A vault URL is a directory path or ``file://`` URL (store under ``<dir>/store``, local
state under ``<dir>/state``) or, later, a remote store whose state directory is given
with ``--state-dir``. One writer per vault: an exclusive ``flock`` on ``writer.lock`` in
the vault directory (whatever ``--state-dir`` a process uses).
"""

from __future__ import annotations

import fcntl
import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from strongroom.core.retention import Policy
from strongroom.crypto import KdfParams, MasterKey, derive_master_key, load_key_file
from strongroom.errors import AuthError, BadInput, Busy

LOCK_TIMEOUT = 30.0
SystemTime = Callable[[], datetime]


def system_time() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Secret:
    """How to unlock: a passphrase or a key file (exactly one)."""

    passphrase: str | None = None
    key_file: Path | None = None

    def master_key(self, kdf: KdfParams | None) -> MasterKey:
        if kdf is None:
            if self.key_file is None:
                raise AuthError(
                    "this vault is opened with a key file",
                    "Pass --key-file with the vault's key file.",
                )
            return load_key_file(self.key_file)
        if self.passphrase is None:
            raise AuthError(
                "this vault is opened with a passphrase",
                "Set STRONGROOM_PASSPHRASE to the vault's passphrase.",
            )
        return derive_master_key(self.passphrase, kdf)


@dataclass(slots=True)
class Options:
    """Per-process settings: who acts, which policy applies, what time it is."""

    actor: str = field(default_factory=lambda: f"user:{getpass.getuser()}")
    policy: Policy = field(default_factory=Policy)
    now: SystemTime = system_time
    state_dir: Path | None = None
    kdf_strength: str = "interactive"
    fresh_catalog: bool = False  # drop the catalog and rebuild it from store + ledger
    replica: str | None = None  # a second store (URL) that every object is copied to
    replica_mode: str = "sync"  # "sync": acknowledged once both copies are durable


def local_root(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" not in url:
        return Path(url)
    return None


def state_dir_for(url: str, explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    root = local_root(url)
    if root is None:
        raise BadInput(f"vault {url} is not local: pass --state-dir for its local state")
    return root / "state"


def store_url(url: str) -> str:
    root = local_root(url)
    return str(root / "store") if root is not None else url


def take_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise Busy(f"another strongroom process holds the writer lock {path}") from None
            time.sleep(0.05)
