"""Replication and repair (REQUIREMENTS.md F2-v: a duplicate copy, kept separately):
every object goes to the primary and the replica, ``verify`` compares them object by
object, ``repair`` restores a missing or damaged copy from the healthy side — by
creating it, never overwriting — and records it in the ledger."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strongroom.core.entries import EntryType
from strongroom.crypto import new_key_file_text
from strongroom.vault.vault import Options, Secret, Vault
from tests.helpers import failed_checks, ingest_files, verify_report
from tests.helpers.ingest_loop import record_bytes
from tests.s3fixtures import S3Target, unique_prefix


class RCli:
    def __init__(self, tmp_path: Path, replica: str, mode: str = "sync") -> None:
        self.vault = tmp_path / "vault"
        self.key = tmp_path / "vault.key"
        self.key.write_text(new_key_file_text())
        self.replica, self.mode = replica, mode
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}

    def __call__(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [
            sys.executable, "-m", "strongroom", "--vault", str(self.vault), "--key-file",
            str(self.key), "--replica", self.replica, "--replica-mode", self.mode,
            *map(str, args),
        ]  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, env=self.env, timeout=300, check=False)
        if check and p.returncode != 0:
            raise AssertionError(f"{args}: exit {p.returncode}: {p.stderr.decode()}")
        return p


def _setup(c: RCli, tmp_path: Path) -> dict[str, bytes]:
    c("init")
    files = {"a.json": b'{"user":"ann","text":"sell 5"}', "b.bin": os.urandom(200_000)}
    return ingest_files(c, tmp_path, files)


def _packs(store_objects: Path) -> list[Path]:
    return sorted(p for p in (store_objects / "packs").rglob("*") if p.is_file())


def _force_delete(store_root: Path, obj: Path) -> None:
    """What root (or a failing disk) can do to a local store behind Strongroom's back."""
    rel = obj.relative_to(store_root / "objects")
    obj.unlink()
    (store_root / "locks" / f"{rel}.json").unlink()


def test_f2v_missing_primary_copy_is_named_then_repaired(tmp_path: Path) -> None:
    c = RCli(tmp_path, str(tmp_path / "replica"))
    ids = _setup(c, tmp_path)
    assert verify_report(c)["ok"] is True
    replica_packs = _packs(tmp_path / "replica" / "objects")
    assert [p.name for p in replica_packs] == [
        p.name for p in _packs(tmp_path / "vault" / "store" / "objects")
    ]
    victim = _packs(tmp_path / "vault" / "store" / "objects")[0]
    name = victim.relative_to(tmp_path / "vault" / "store" / "objects").as_posix()
    _force_delete(tmp_path / "vault" / "store", victim)
    for rid, data in ids.items():  # still readable: from the replica
        assert c("get", rid).stdout == data
    r = verify_report(c)
    assert failed_checks(r) == {"replica": [name]}
    out = json.loads(c("repair", "--json").stdout)
    assert out["ok"] is True
    assert out["restored"] == [{"object": name, "side": "primary", "problem": "missing"}]
    assert victim.read_bytes() == (tmp_path / "replica" / "objects" / name).read_bytes()
    assert verify_report(c)["ok"] is True
    # the repair is in the ledger, with the actor and the restored bytes' hash
    opts = Options(state_dir=None, replica=c.replica, kdf_strength="test")
    with Vault.open(str(c.vault), Secret(key_file=c.key), opts) as v:
        repairs = [e for _, e in v.entries() if e.type is EntryType.REPAIR]
    assert [(e["object"], e["restored_on"], e["problem"]) for e in repairs] == [
        (name, "primary", "missing")
    ]
    assert repairs[0]["sha256"] == hashlib.sha256(victim.read_bytes()).hexdigest()
    assert repairs[0].actor.startswith("user:")


def test_f2v_damaged_replica_copy_is_quarantined_and_recreated(tmp_path: Path) -> None:
    c = RCli(tmp_path, str(tmp_path / "replica"))
    ids = _setup(c, tmp_path)
    victim = _packs(tmp_path / "replica" / "objects")[0]
    name = victim.relative_to(tmp_path / "replica" / "objects").as_posix()
    damaged = bytearray(victim.read_bytes())
    damaged[len(damaged) // 2] ^= 0x40
    os.chmod(victim, 0o644)
    victim.write_bytes(bytes(damaged))
    r = verify_report(c)
    assert failed_checks(r) == {"replica": [name]}
    checks = r["checks"]
    assert isinstance(checks, list)
    assert any("damaged on the replica" in p for ch in checks for p in ch["problems"])
    out = json.loads(c("repair", "--json").stdout)
    assert out["restored"] == [{"object": name, "side": "replica", "problem": "damaged"}]
    good = (tmp_path / "vault" / "store" / "objects" / name).read_bytes()
    assert victim.read_bytes() == good
    kept = list((tmp_path / "replica" / "quarantine").rglob(Path(name).name))
    assert [p.read_bytes() for p in kept if "objects" in p.parts] == [bytes(damaged)]
    assert verify_report(c)["ok"] is True
    for rid, data in ids.items():
        assert c("get", rid).stdout == data


def test_async_replica_catches_up_by_close(tmp_path: Path) -> None:
    c = RCli(tmp_path, str(tmp_path / "replica"), mode="async")
    _setup(c, tmp_path)
    assert verify_report(c)["ok"] is True  # every object reached the replica


def test_repair_without_replica_is_a_clear_error(tmp_path: Path) -> None:
    c = RCli(tmp_path, str(tmp_path / "replica"))
    _setup(c, tmp_path)
    cmd = [sys.executable, "-m", "strongroom", "--vault", str(c.vault), "--key-file", str(c.key)]
    p = subprocess.run([*cmd, "repair"], capture_output=True, env=c.env, check=False)
    assert p.returncode == 6 and b"no replica" in p.stderr


def test_s3_replica_restores_a_lost_local_copy(s3: S3Target, tmp_path: Path) -> None:
    """A local primary with an S3 Object Lock replica: the primary loses a pack (root
    deletes it); verify names it; repair restores it from S3; verify passes."""
    c = RCli(tmp_path, s3.url(unique_prefix()))
    c.env.update(s3.env())
    ids = _setup(c, tmp_path)
    assert verify_report(c)["ok"] is True
    victim = _packs(tmp_path / "vault" / "store" / "objects")[0]
    _force_delete(tmp_path / "vault" / "store", victim)
    assert "replica" in failed_checks(verify_report(c))
    assert json.loads(c("repair", "--json").stdout)["ok"] is True
    assert victim.exists()
    assert verify_report(c)["ok"] is True
    for rid, data in ids.items():
        assert c("get", rid).stdout == data


@pytest.mark.parametrize("mode", ["bogus"])
def test_unknown_replica_mode_is_refused(tmp_path: Path, mode: str) -> None:
    c = RCli(tmp_path, str(tmp_path / "replica"), mode=mode)
    p = c("init", check=False)
    assert p.returncode == 6 and b"replica mode" in p.stderr


def test_sigkill_during_replicated_ingest_then_repair(tmp_path: Path) -> None:
    """F2-v with crashes: SIGKILL while ingesting with a sync replica. Every record
    acknowledged is on both sides; whatever the kill left half-copied (an object on one
    side only) is named by verify and closed by repair; afterwards verify passes and the
    records read back byte-exact from either side alone."""
    c = RCli(tmp_path, str(tmp_path / "replica"))
    c("init")
    loop = Path(__file__).parent / "helpers" / "ingest_loop.py"
    rng = random.Random(77)
    acked: dict[str, tuple[int, int]] = {}
    for round_ in range(5):
        seed = 900 + round_
        child = subprocess.Popen(
            [sys.executable, str(loop), "--replica", c.replica, str(c.vault), str(c.key),
             str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env,
        )  # fmt: skip
        time.sleep(rng.uniform(0.8, 2.5))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        for e in (json.loads(x) for x in out.decode().splitlines() if x.strip()):
            if "record" in e:
                acked[str(e["record"])] = (seed, int(e["n"]))
    assert acked
    report = verify_report(c)
    if not report["ok"]:
        assert set(failed_checks(report)) <= {"replica", "objects"}, failed_checks(report)
        assert json.loads(c("repair", "--json").stdout)["ok"] is True
    assert verify_report(c)["ok"] is True
    sample = random.Random(5).sample(sorted(acked), min(25, len(acked)))
    for rid in sample:
        seed, n = acked[rid]
        assert c("get", rid).stdout == record_bytes(seed, n)
    # the replica alone holds every acknowledged record: open it as a vault's store
    alone = tmp_path / "replica-vault"
    alone.mkdir()
    (alone / "store").symlink_to(tmp_path / "replica")
    base = [sys.executable, "-m", "strongroom", "--vault", str(alone), "--key-file", str(c.key)]
    for rid in sample[:5]:
        seed, n = acked[rid]
        p = subprocess.run([*base, "get", rid], capture_output=True, env=c.env, check=False)
        assert p.returncode == 0 and p.stdout == record_bytes(seed, n), p.stderr


def test_async_replica_bounds_writes_in_flight_and_reports_failures() -> None:
    """async mode: at most ASYNC_IN_FLIGHT replica writes are outstanding (a slow
    replica slows the writer instead of filling memory with packs), and a write the
    replica failed is raised by flush/close — never lost silently."""
    import threading
    from datetime import UTC, datetime, timedelta

    from strongroom.errors import StorageError
    from strongroom.store.base import ObjectInfo, RetentionMode
    from strongroom.store.memory import MemoryStore
    from strongroom.store.replicated import ASYNC_IN_FLIGHT, ReplicatedStore

    now = datetime(2026, 1, 1, tzinfo=UTC)
    gate = threading.Event()
    running = []

    class SlowReplica(MemoryStore):
        def put(
            self,
            name: str,
            data: bytes | bytearray,
            *,
            retain_until: datetime,
            mode: RetentionMode = RetentionMode.COMPLIANCE,
            legal_hold: bool = False,
        ) -> ObjectInfo:
            running.append(name)
            gate.wait(10)
            if name == "bad":
                raise StorageError("replica refused")
            return super().put(
                name, data, retain_until=retain_until, mode=mode, legal_hold=legal_hold
            )

    store = ReplicatedStore(MemoryStore(lambda: now), SlowReplica(lambda: now), mode="async")
    until = now + timedelta(days=1)
    writer = threading.Thread(
        target=lambda: [store.put(f"o{i}", b"x", retain_until=until) for i in range(10)]
    )
    writer.start()
    writer.join(1.0)
    assert writer.is_alive()  # held back: the replica has not finished anything
    assert store.primary.exists(f"o{ASYNC_IN_FLIGHT}")
    assert not store.primary.exists(f"o{ASYNC_IN_FLIGHT + 2}")
    gate.set()
    writer.join(10)
    store.put("bad", b"x", retain_until=until)
    with pytest.raises(StorageError, match="missed writes"):
        store.flush()
    assert all(store.replica.exists(f"o{i}") for i in range(10))
