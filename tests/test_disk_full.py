"""A full disk: a clear error, nothing half-written, the vault still verifies.

The issue's requirement, made concrete (ARCHITECTURE.md: an append is acknowledged
only once its objects and ledger entry are durable; ``Store.put``: "A full disk raises
DiskFull and leaves no visible partial object"):

- ingest on a full disk raises :class:`~strongroom.errors.DiskFull` (the CLI: exit
  code 7, one ``error:`` line and its ``hint:`` on stderr, no traceback);
- every record acknowledged before stays readable, byte-exact;
- nothing half-written is visible: every file under ``store/objects`` parses
  completely, and no temp file is left behind;
- once space is freed the vault opens, verifies and takes new records.

Two ways to fill the disk: a real 8 MiB tmpfs (needs root and permission to mount;
skipped otherwise, e.g. in an unprivileged container), and, always, a fake
``os.write`` (the call the local store writes with) that writes half of the k-th
write and then fails with ENOSPC — for every k in a batch, so the disk fills in
turn during the pack, the entry bundle, the hash tile and the checkpoint, each
with its lock file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from strongroom.crypto import new_key_file_text
from strongroom.errors import DiskFull
from strongroom.vault.ingest import Appender, AppendResult, Item
from strongroom.vault.vault import Options, Secret, Vault
from strongroom.vault.verify import Report, verify
from tests.helpers import check_store_objects, run_cli

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

Contents = dict[str, bytes]  # sha256 -> raw bytes of every record we tried to append


def _options() -> Options:
    return Options(actor="user:disk-full-test", kdf_strength="test")


def _content(tag: str, size: int) -> bytes:
    """Deterministic content: random (incompressible) bytes, text past 1 MiB."""
    rng = random.Random(f"disk-full/{tag}/{size}")
    head = f"{tag}\n".encode()
    if size <= 1 << 20:
        return (head + rng.randbytes(size))[:size]
    text = b"".join(f"{tag} line {i}\n".encode() for i in range(size // 16))
    return (head + rng.randbytes(1 << 20) + text)[:size]


def _append_batch(
    v: Vault, tag: str, sizes: list[int], acks: list[AppendResult], contents: Contents
) -> None:
    """One group commit of records of ``sizes``; acknowledged ones go to ``acks``."""
    with Appender(v, on_ack=acks.append, batch_records=len(sizes) + 1) as app:
        for i, size in enumerate(sizes):
            data = _content(f"{tag}-{i}", size)
            contents[hashlib.sha256(data).hexdigest()] = data
            app.add(
                Item.from_bytes(
                    data,
                    record_class="chat",
                    source="t",
                    source_id=f"{tag}-{i}",
                    filename=f"{tag}-{i}.json",
                )
            )


def _read(v: Vault, record_id: str) -> bytes:
    buf = io.BytesIO()
    v.read_record(record_id, buf, audit=False)
    return buf.getvalue()


def _explain(report: Report) -> str:
    return "; ".join(f"{c.name}: {' / '.join(c.problems)}" for c in report.checks if not c.ok)


def _ensure(ok: bool, message: str) -> None:
    """An assertion whose message is exactly ``message`` (collected, then reported)."""
    if not ok:
        raise AssertionError(message)


def _check_vault(
    vault_dir: Path, key: Path, acks: list[AppendResult], contents: Contents, where: str
) -> None:
    """Reopen: nothing torn, verify passes, every acknowledged record byte-exact, and any
    record of a failed batch that made it into the ledger is complete too."""
    problems = check_store_objects(vault_dir / "store", key)
    _ensure(not problems, f"{where}: half-written objects are visible: {problems}")
    with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
        for a in acks:
            _ensure(_read(v, a.record) == contents[a.sha256], f"{where}: {a.record} differs")
        for rec in v.catalog.all_records():  # at-least-once: unacknowledged but complete
            _ensure(_read(v, rec["id"]) == contents[rec["sha256"]], f"{where}: {rec['id']}")
        report = verify(v, deep=True)
        _ensure(report.ok, f"{where}: after reopening, verify fails: {_explain(report)}")


def _reopen(vault_dir: Path, key: Path) -> str:
    """What reopening the vault gives now (for failure messages)."""
    try:
        with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
            report = verify(v)
    except Exception as e:
        return f"then reopening the vault raises {type(e).__name__}: {e}"
    return (
        "then it reopens and verifies"
        if report.ok
        else (f"then it reopens, but verify fails: {_explain(report)}")
    )


# --- always on: a fake os.write that runs out of space ----------------------------------------


class FakeFullDisk:
    """Replaces ``os.write`` for files under ``root``: once armed at ``k``, the k-th write
    writes half of its bytes (a short write, as a filling disk does) and every later
    write fails with ENOSPC, until disarmed."""

    def __init__(self, root: Path, real: Callable[[int, ReadableBuffer], int]) -> None:
        self.root = str(root.resolve())
        self.real = real
        self.at: int | None = None
        self.calls = 0
        self.full = False

    def arm(self, at: int) -> None:
        self.at, self.calls, self.full = at, 0, False

    def disarm(self) -> None:
        self.at = None

    def write(self, fd: int, data: ReadableBuffer) -> int:
        if self.at is None or not self._ours(fd):
            return self.real(fd, data)
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.calls += 1
        if self.calls == self.at:
            self.full = True
            view = memoryview(data)
            return self.real(fd, view[: len(view) // 2])
        return self.real(fd, data)

    def _ours(self, fd: int) -> bool:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return True  # no /proc: count every write
        return target.startswith(self.root + os.sep)


@pytest.fixture
def key(tmp_path: Path) -> Path:
    k = tmp_path / "vault.key"
    k.write_text(new_key_file_text())
    return k


def _fake_disk(monkeypatch: pytest.MonkeyPatch, root: Path) -> FakeFullDisk:
    disk = FakeFullDisk(root, os.write)
    monkeypatch.setattr(os, "write", disk.write)
    return disk


FAILING_BATCH = [3000, 200, 1 << 19, 5000, 1_500_000, 700, 40, 9000]  # 1.5 MB: two writes


def test_enospc_at_any_write_of_a_batch_raises_disk_full_and_loses_nothing(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each store write of a group commit in turn hits a full disk. Every time: DiskFull,
    no acknowledgement of the failed batch, no temp file left, nothing torn visible;
    after reopening, earlier records read back, verify passes and ingest goes on."""
    disk = _fake_disk(monkeypatch, tmp_path)
    failed_on: list[str] = []
    k = 0
    while True:
        k += 1
        assert k < 100, "the batch never completed"
        vault_dir = tmp_path / f"v{k}"
        Vault.create(str(vault_dir), Secret(key_file=key), _options()).close()
        acks: list[AppendResult] = []
        contents: Contents = {}
        where = f"ENOSPC at store write #{k} of the batch"
        with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
            _append_batch(v, "before", [100, 2000, 300 << 10], acks, contents)
            assert len(acks) == 3
            before = len(acks)
            disk.arm(k)
            try:
                _append_batch(v, "failing", FAILING_BATCH, acks, contents)
            except DiskFull as e:
                failed_on.append(e.message)
                assert disk.full, f"{where}: DiskFull without a full disk: {e}"
            finally:
                disk.disarm()
        if not disk.full:
            assert len(acks) == before + len(FAILING_BATCH)
            break  # k is past the batch's last write: it completed normally
        assert len(acks) == before, f"{where}: records of the failed batch were acknowledged"
        leftovers = sorted(p.name for p in (vault_dir / "store" / "tmp").iterdir())
        assert not leftovers, f"{where}: temp files left behind: {leftovers}"
        _check_vault(vault_dir, key, acks, contents, where)
        with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
            _append_batch(v, "after", [10, 4000], acks, contents)
        assert len(acks) == before + 2, f"{where}: ingest does not work again"
        _check_vault(vault_dir, key, acks, contents, f"{where}, then one more batch")
        shutil.rmtree(vault_dir)
    print(f"{k - 1} ENOSPC points; DiskFull messages: {sorted(set(failed_on))}")
    # the failing writes covered packs and every kind of ledger object
    for kind in ("packs/", "tile/entries/", "tile/0/", "checkpoints/"):
        assert any(kind in m for m in failed_on), f"no ENOSPC while writing {kind}"


def test_after_disk_full_the_open_vault_keeps_working(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running ingest service catches DiskFull, space is freed, and it goes on
    with the same open vault: the next batches are acknowledged, and the vault
    verifies, both in that process and after reopening."""
    disk = _fake_disk(monkeypatch, tmp_path)
    problems: list[str] = []
    k = 0
    while True:
        k += 1
        assert k < 100, "the batch never completed"
        vault_dir = tmp_path / f"v{k}"
        Vault.create(str(vault_dir), Secret(key_file=key), _options()).close()
        acks: list[AppendResult] = []
        contents: Contents = {}
        where = f"ENOSPC at store write #{k} of a batch"
        try:
            with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
                _append_batch(v, "before", [100, 2000], acks, contents)
                disk.arm(k)
                try:
                    _append_batch(v, "failing", FAILING_BATCH, acks, contents)
                except DiskFull as e:
                    where += f" ({e.message.split(' to ')[0]})"
                finally:
                    disk.disarm()
                if not disk.full:
                    break
                n = len(acks)
                _append_batch(v, "after", [10, 4000, 70], acks, contents)
                _ensure(len(acks) == n + 3, "the next batch was not acknowledged")
                report = verify(v)
                _ensure(report.ok, f"verify in the same process fails: {_explain(report)}")
            _check_vault(vault_dir, key, acks, contents, where)
        except Exception as e:  # collect every failing point, then report them all
            problems.append(f"{where}: {type(e).__name__}: {e}; {_reopen(vault_dir, key)}")
    assert not problems, "after DiskFull, going on with the open vault fails:\n" + "\n".join(
        problems
    )


def test_disk_full_while_verify_records_its_entry_does_not_fork_the_ledger(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``verify`` appends a ``verify`` entry and swallows a store error while committing
    it. A full disk there must not leave the ledger inconsistent with what is stored:
    the next appends and every later verify must still pass."""
    disk = _fake_disk(monkeypatch, tmp_path)
    problems: list[str] = []
    k = 0
    while True:
        k += 1
        assert k < 100, "verify's commit never completed"
        vault_dir = tmp_path / f"v{k}"
        Vault.create(str(vault_dir), Secret(key_file=key), _options()).close()
        acks: list[AppendResult] = []
        contents: Contents = {}
        where = f"ENOSPC at store write #{k} of verify's commit"
        try:
            with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
                _append_batch(v, "before", [100, 2000], acks, contents)
                disk.arm(k)
                try:
                    _ensure(verify(v).ok, "verify fails on a full disk")
                finally:
                    disk.disarm()
                if not disk.full:
                    break
                _append_batch(v, "after", [10, 4000, 70], acks, contents)
                _ensure(len(acks) == 5, "the next batch was not acknowledged")
                report = verify(v)
                _ensure(report.ok, f"the next verify fails: {_explain(report)}")
            _check_vault(vault_dir, key, acks, contents, where)
        except Exception as e:
            problems.append(f"{where}: {type(e).__name__}: {e}; {_reopen(vault_dir, key)}")
    assert not problems, "a full disk during verify damages the vault:\n" + "\n".join(problems)


# --- a real small filesystem ------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for this test (skipped where mounting is not permitted)."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        p = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot run mount: {e}")
    if p.returncode != 0:
        pytest.skip(
            f"mount -t tmpfs is not permitted here (e.g. a container without "
            f"CAP_SYS_ADMIN): {p.stderr.decode(errors='replace').strip()}"
        )
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# record sizes tried in turn until each hits the full disk: the big ones fail while
# storing a pack, the small ones later, in the ledger objects, the state files or the
# catalog — every one of them must be reported as DiskFull
FILL_SIZES = [256 << 10, 64 << 10, 16 << 10, 4 << 10, 1 << 10, 100]


@pytest.mark.slow
def test_real_full_disk_clear_error_nothing_half_written(
    small_fs: Path, tmp_path: Path, key: Path
) -> None:
    vault_dir = small_fs / "vault"
    Vault.create(str(vault_dir), Secret(key_file=key), _options()).close()
    filler = small_fs / "filler"
    with filler.open("wb") as f:  # leave about 1.5 MiB
        f.write(b"\0" * max(0, _free(small_fs) - (1536 << 10)))
    acks: list[AppendResult] = []
    contents: Contents = {}
    wrong: list[str] = []
    batches = 0
    for size in FILL_SIZES:
        for attempt in range(400):
            batches += 1
            try:
                with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
                    _append_batch(v, f"fill-{size}-{attempt}", [size] * 4, acks, contents)
            except DiskFull:
                break
            except Exception as e:
                wrong.append(
                    f"API ingest of {size}-byte records (batch {attempt}) on a full disk"
                    f" raised {type(e).__name__}: {e}"
                )
                break
        else:
            pytest.fail(f"{size}-byte records never filled the disk")
    # (a ledger commit writes its objects side by side, so it fails with a little more
    # space left than one object at a time would)
    assert _free(small_fs) < 128 << 10, "the disk did not fill up"
    assert len(acks) >= 4

    # nothing half-written
    leftovers = sorted(p.name for p in (vault_dir / "store" / "tmp").iterdir())
    assert not leftovers, f"temp files left behind: {leftovers}"
    problems = check_store_objects(vault_dir / "store", key)
    assert not problems, "half-written objects are visible:\n" + "\n".join(problems)
    # while the disk is still full, acknowledged records read back — or opening the vault
    # (which may have to bring its catalog up to date) fails with a clear DiskFull
    try:
        with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
            for a in acks:
                assert _read(v, a.record) == contents[a.sha256]
    except DiskFull:
        pass
    except Exception as e:
        wrong.append(f"opening the vault to read on a full disk raised {type(e).__name__}: {e}")

    # the CLI on the full disk: exit 7, a one-line error and its hint, no traceback
    for size in (200 << 10, 100):  # a pack that does not fit; a record that may
        record = tmp_path / f"full-{size}.json"
        record.write_bytes(_content(f"cli-{size}", size))
        contents[hashlib.sha256(record.read_bytes()).hexdigest()] = record.read_bytes()
        p = run_cli(vault_dir, key, "ingest", record, "--json")
        err = p.stderr.decode(errors="replace")
        lines = err.strip().splitlines()
        what = f"CLI ingest of a {size}-byte file on a full disk"
        if "Traceback" in err or p.returncode != 7:
            tail = "\n".join(f"    {x}" for x in lines[-6:])
            wrong.append(f"{what}: exit {p.returncode}, stderr ends:\n{tail}")
        elif not (
            len(lines) == 2
            and lines[0].startswith("error:")
            and lines[1].startswith("hint:")
            and "space" in lines[0].lower()
        ):
            wrong.append(f"{what}: not one clear error line and a hint:\n{err}")
        if p.stdout:
            wrong.append(f"{what}: acknowledged a record it could not store: {p.stdout!r}")

    # free space: the vault opens, verifies, and ingest works again (API and CLI)
    filler.unlink()
    _check_vault(vault_dir, key, acks, contents, "after freeing space")
    n = len(acks)
    with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
        _append_batch(v, "after", [100, 300 << 10], acks, contents)
    assert len(acks) == n + 2
    record = tmp_path / "after.json"
    record.write_bytes(_content("cli-after", 300 << 10))
    contents[hashlib.sha256(record.read_bytes()).hexdigest()] = record.read_bytes()
    p = run_cli(vault_dir, key, "ingest", record, "--json")
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert len(out) == 1 and out[0]["sha256"] == hashlib.sha256(record.read_bytes()).hexdigest()
    p = run_cli(vault_dir, key, "verify", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["ok"] is True, p.stdout.decode()
    _check_vault(vault_dir, key, acks, contents, "after ingesting again")
    print(f"filled an 8 MiB tmpfs in {batches} batches; {len(acks)} records acknowledged")
    assert not wrong, "a full disk is not reported as DiskFull:\n" + "\n".join(wrong)
