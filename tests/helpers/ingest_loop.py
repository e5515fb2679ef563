"""Crash-test child process: append deterministic records to a vault until killed.

Usage::

    ingest_loop.py VAULT KEYFILE SEED [--die-after-fsync K] [--die-after-put PREFIX K]
                   [--state-dir DIR] [--replica URL]
    ingest_loop.py --create VAULT KEYFILE [--die-after-fsync K]

The loop opens the vault (so a kill right after start lands in open / crash
recovery) and appends records forever in group-commit batches of 1..50 records.
Record ``n`` of seed ``S`` has the content :func:`record_bytes` ``(S, n)`` (mostly
small JSON messages, about 1 in 120 between 300 KiB and 2 MiB, which go through the
content-defined chunker), so the parent can recompute every expected byte. Each
acknowledged record is printed, once its batch is durable (``on_ack``), as one JSON
line ``{"record": id, "sha256": hex, "n": counter}`` and stdout is flushed after
each line. Other lines carry an ``"event"`` key.

The parent normally kills the process with SIGKILL at a random moment. For
deterministic crash points the child can also SIGKILL itself: ``--die-after-fsync K``
just before its K-th ``os.fsync`` (every durable step of the local store and of the
state files is delimited by one), ``--die-after-put PREFIX K`` right after the K-th
successful store ``put`` of an object whose name starts with PREFIX (e.g.
``tile/entries/``: entries durable, checkpoint not yet written).

``--create`` runs ``Vault.create`` instead (kill-during-init test): it prints
``{"event": "ready"}`` once imported, just before ``Vault.create``, and
``{"event": "created"}`` when that returns.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SMALL_WORDS = (
    "trade order fill cancel desk client margin swap bond equity option future hedge "
    "price quote bid ask spread settle clear confirm breach limit risk audit compliance"
).split()
BIG_ONE_IN = 120
BIG_MIN, BIG_MAX = 300 << 10, 2 << 20


def record_bytes(seed: int, n: int) -> bytes:
    """The raw content of record ``n`` of the run with ``seed`` (unique per (seed, n))."""
    rng = random.Random(f"strongroom-crash/{seed}/{n}")
    if rng.randrange(BIG_ONE_IN) == 0:
        size = rng.randint(BIG_MIN, BIG_MAX)
        body = bytearray(f"attachment seed={seed} n={n}\n".encode())
        while len(body) < size:
            if rng.random() < 0.5:  # incompressible: stored as is
                body += rng.randbytes(rng.randint(4 << 10, 96 << 10))
            else:  # compressible: zstd
                line = f"{rng.choice(SMALL_WORDS)} {rng.randrange(10**6)} seed={seed} n={n}\n"
                body += line.encode() * rng.randint(50, 3000)
        return bytes(body[:size])
    words = " ".join(rng.choice(SMALL_WORDS) for _ in range(rng.randint(1, 400)))
    msg = {
        "seed": seed,
        "n": n,
        "from": f"user{rng.randrange(50)}@example.com",
        "channel": f"desk-{rng.randrange(8)}",
        "text": words,
    }
    return json.dumps(msg, sort_keys=True).encode()


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _die_after_fsync(k: int) -> None:
    real = os.fsync
    count = 0

    def fsync(fd: Any) -> None:
        nonlocal count
        count += 1
        if count >= k:
            _die()
        real(fd)

    os.fsync = fsync


def _die_after_put(prefix: str, k: int) -> None:
    from strongroom.store.local import LocalStore

    real: Callable[..., Any] = LocalStore.put
    count = 0

    def put(self: LocalStore, name: str, data: bytes | bytearray, **kw: Any) -> Any:
        nonlocal count
        info = real(self, name, data, **kw)
        if name.startswith(prefix):
            count += 1
            if count >= k:
                _die()
        return info

    def put_many(self: LocalStore, items: Any, **kw: Any) -> Any:
        # object by object, so the kill can fall between two objects of one call
        return [put(self, name, data, **kw) for name, data in items]

    LocalStore.put = put  # type: ignore[method-assign]
    LocalStore.put_many = put_many  # type: ignore[method-assign]


_STATE_DIR: list[Path] = []  # --state-dir (a vault on S3 keeps its local state there)
_REPLICA: list[str] = []  # --replica URL


def _options() -> Any:
    from strongroom.vault.vault import Options

    state = _STATE_DIR[0] if _STATE_DIR else None
    replica = _REPLICA[0] if _REPLICA else None
    return Options(actor="user:crash-test", kdf_strength="test", state_dir=state, replica=replica)


def run_create(vault: str, key_file: Path) -> None:
    from strongroom.vault.vault import Secret, Vault

    _emit({"event": "ready"})
    Vault.create(vault, Secret(key_file=key_file), _options()).close()
    _emit({"event": "created"})


def run_loop(vault: str, key_file: Path, seed: int) -> None:
    from strongroom.vault.ingest import Appender, AppendResult, Item
    from strongroom.vault.vault import Secret, Vault

    _emit({"event": "start", "seed": seed})
    with Vault.open(vault, Secret(key_file=key_file), _options()) as v:
        _emit({"event": "opened", "ledger": v.ledger.size})
        batches = random.Random(f"strongroom-crash-batches/{seed}")
        n = 0
        while True:
            size = batches.randint(1, 50)
            by_sha: dict[str, int] = {}

            def ack(r: AppendResult, by_sha: dict[str, int] = by_sha) -> None:
                _emit({"record": r.record, "sha256": r.sha256, "n": by_sha[r.sha256]})

            # batch_records=size: the last add of the batch triggers the group commit
            with Appender(v, on_ack=ack, batch_records=size) as app:
                for _ in range(size):
                    data = record_bytes(seed, n)
                    by_sha[hashlib.sha256(data).hexdigest()] = n
                    app.add(
                        Item.from_bytes(
                            data,
                            record_class="chat",
                            source="t",
                            source_id=f"s{seed}-m{n}",
                            filename=f"m{n}.json",
                        )
                    )
                    n += 1


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--create", action="store_true")
    p.add_argument("--die-after-fsync", type=int, metavar="K")
    p.add_argument("--die-after-put", nargs=2, metavar=("PREFIX", "K"))
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--replica")
    p.add_argument("vault")
    p.add_argument("key_file", type=Path)
    p.add_argument("seed", type=int, nargs="?", default=0)
    a = p.parse_args(argv)
    if a.state_dir is not None:
        _STATE_DIR.append(a.state_dir)
    if a.replica is not None:
        _REPLICA.append(a.replica)
    if a.die_after_fsync is not None:
        _die_after_fsync(a.die_after_fsync)
    if a.die_after_put is not None:
        _die_after_put(a.die_after_put[0], int(a.die_after_put[1]))
    if a.create:
        run_create(a.vault, a.key_file)
    else:
        run_loop(a.vault, a.key_file, a.seed)


if __name__ == "__main__":
    main()
