"""LocalStore: the store contract, plus what only a directory backend can get wrong.

Local-only tests cover the on-disk layout, read-only files, crash points (a child
process dies at each step of ``put``), a full disk, orphaned and damaged lock
files, directory fsyncs, prefix listing that does not walk the whole tree, and
paths that try to escape the root.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import (
    BadInput,
    CorruptVault,
    DiskFull,
    NotFound,
    ObjectExists,
    Refused,
    StorageError,
)
from strongroom.store import LocalStore, RetentionMode, local, open_store
from strongroom.store.local import LockState, check_transition
from tests.store_contract import DAY, T0, FakeClock, MakeStore, StoreContract


class TestLocalStoreContract(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda clock: LocalStore(tmp_path / "store", clock.now)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path, clock: FakeClock) -> Iterator[LocalStore]:
    s = LocalStore(root, clock.now)
    yield s
    s.close()


def temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "tmp").iterdir())


def lock_files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root / "locks").as_posix() for p in (root / "locks").rglob("*.json")
    )


# ----------------------------------------------------------------- layout


def test_layout_and_read_only_files(store: LocalStore, root: Path) -> None:
    store.put("a/b", b"data", retain_until=T0 + 30 * DAY, mode=RetentionMode.GOVERNANCE)
    assert store.url == root.resolve().as_uri()
    obj = root / "objects" / "a" / "b"
    assert obj.read_bytes() == b"data"
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    assert temp_files(root) == []
    doc = json.loads((root / "locks" / "a" / "b.json").read_text())
    assert doc == {
        "format": 1,
        "name": "a/b",
        "retain_until": "2025-01-31T00:00:00Z",
        "mode": "GOVERNANCE",
        "legal_hold": False,
        "size": 4,
        "created": "2025-01-01T00:00:00Z",
    }


def test_state_survives_reopen(root: Path, clock: FakeClock) -> None:
    with_store = LocalStore(root, clock.now)
    with_store.put("rec", b"x", retain_until=T0 + DAY)
    with_store.extend_retention("rec", T0 + 9 * DAY)
    info = with_store.set_legal_hold("rec", True)
    with_store.close()
    again = LocalStore(root, clock.now)
    assert again.head("rec") == info
    assert again.get("rec") == b"x"
    again.close()


def test_closed_store_refuses_use(store: LocalStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.put("a", b"x", retain_until=T0)
    with pytest.raises(StorageError, match="closed"):
        store.get("a")
    with pytest.raises(StorageError, match="closed"):
        list(store.list())


def test_open_removes_temp_files_and_never_touches_objects(root: Path, clock: FakeClock) -> None:
    s = LocalStore(root, clock.now)
    s.put("kept", b"x", retain_until=T0 + DAY)
    s.close()
    (root / "tmp" / "obj-dead.tmp").write_bytes(b"partial")
    (root / "tmp" / "lock-dead.tmp").write_bytes(b"{")
    (root / "objects" / "stray").write_bytes(b"no lock file")
    s = LocalStore(root, clock.now)
    assert temp_files(root) == []
    assert (root / "objects" / "stray").read_bytes() == b"no lock file"
    assert list(s.list()) == ["kept", "stray"]
    s.close()


# ------------------------------------------------------------ crash points

_CRASH_CHILD = """
import os, sys
from datetime import datetime, timezone
from pathlib import Path
from strongroom.store.local import LocalStore

point, root = sys.argv[1], Path(sys.argv[2])
t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
store = LocalStore(root, lambda: t0)
real = {"write": os.write, "fsync": os.fsync, "replace": os.replace, "link": os.link}

def crash_write(fd, data):
    real["write"](fd, bytes(data)[:3])
    os._exit(42)

def crash_after_link(*args, **kwargs):
    real["link"](*args, **kwargs)
    os._exit(42)

def crash(*args, **kwargs):
    os._exit(42)

patch = {"write": crash_write, "link-after": crash_after_link}.get(point, crash)
setattr(os, point.split("-")[0], patch)
store.put("a/b", b"new data", retain_until=datetime(2030, 1, 1, tzinfo=timezone.utc))
os._exit(0)
"""


@pytest.mark.parametrize("point", ["write", "fsync", "replace", "link"])
def test_crash_before_link_leaves_no_object(root: Path, clock: FakeClock, point: str) -> None:
    """A process killed anywhere before the link leaves nothing visible; reopen cleans up."""
    LocalStore(root, clock.now).close()
    child = subprocess.run(
        [sys.executable, "-c", _CRASH_CHILD, point, str(root)], capture_output=True, check=False
    )
    assert child.returncode == 42, child.stderr.decode()
    assert not (root / "objects" / "a" / "b").exists()
    assert temp_files(root), "the crash should have left a temp file behind"
    s = LocalStore(root, clock.now)
    assert temp_files(root) == []
    assert not s.exists("a/b")
    assert list(s.list()) == []
    with pytest.raises(NotFound):
        s.head("a/b")
    with pytest.raises(NotFound):
        s.get("a/b")
    # the name is free: a lock file left by the crash is replaced, not obeyed
    info = s.put("a/b", b"other", retain_until=T0 + DAY)
    assert s.head("a/b") == info and s.get("a/b") == b"other"
    s.close()


def test_crash_after_link_leaves_a_complete_object(root: Path, clock: FakeClock) -> None:
    """Once the object is visible its lock file is already there."""
    LocalStore(root, clock.now).close()
    child = subprocess.run(
        [sys.executable, "-c", _CRASH_CHILD, "link-after", str(root)],
        capture_output=True,
        check=False,
    )
    assert child.returncode == 42, child.stderr.decode()
    s = LocalStore(root, clock.now)
    assert s.get("a/b") == b"new data"
    assert s.head("a/b").retain_until.year == 2030
    assert temp_files(root) == []
    s.close()


# --------------------------------------------------------------- full disk


def _raiser(code: int) -> Callable[..., Any]:
    def fail(*args: object, **kwargs: object) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    "case",
    [
        ("write", errno.ENOSPC, DiskFull),
        ("write", errno.EDQUOT, DiskFull),
        ("fsync", errno.ENOSPC, DiskFull),
        ("replace", errno.ENOSPC, DiskFull),
        ("link", errno.ENOSPC, DiskFull),
        ("write", errno.EIO, StorageError),
        ("link", errno.EIO, StorageError),
    ],
)
def test_write_failure_leaves_nothing_visible(
    store: LocalStore,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, int, type[StorageError]],
) -> None:
    """ENOSPC/EDQUOT anywhere in put is DiskFull, other errors StorageError; no trace left."""
    func, code, error = case
    store.put("other", b"kept", retain_until=T0 + DAY)
    monkeypatch.setattr(os, func, _raiser(code))
    with pytest.raises(error) as e:
        store.put("a/b", b"data" * 1000, retain_until=T0 + DAY)
    monkeypatch.undo()
    assert isinstance(e.value, DiskFull) == (error is DiskFull)
    assert not store.exists("a/b")
    assert list(store.list()) == ["other"]
    assert temp_files(root) == []
    assert lock_files(root) == ["other.json"]
    store.put("a/b", b"data", retain_until=T0 + DAY)  # works once there is space


def test_disk_full_on_lock_update_keeps_old_state(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.put("rec", b"x", retain_until=T0 + DAY)
    monkeypatch.setattr(os, "write", _raiser(errno.ENOSPC))
    with pytest.raises(DiskFull):
        store.extend_retention("rec", T0 + 9 * DAY)
    with pytest.raises(DiskFull):
        store.set_legal_hold("rec", True)
    monkeypatch.undo()
    assert store.head("rec") == before
    assert temp_files(root) == []


# ------------------------------------------------- large objects (O_DIRECT)


def _direct_supported(d: Path) -> bool:
    """Whether this file system takes O_DIRECT writes at all (tmpfs may not)."""
    probe = d / "direct-probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return hasattr(os, "O_DIRECT")


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))


LARGE_SIZES = [
    local.DIRECT_MIN,  # aligned, one bounce buffer
    local.DIRECT_MIN + 1,  # a one-byte tail through the page cache
    2 * local._BOUNCE,  # exactly two bounce buffers, no tail
    5 * (1 << 20) + 4095,  # two buffers, a partial third, a tail
]


def test_large_objects_bypass_the_page_cache_and_round_trip(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs (>= DIRECT_MIN) are written with O_DIRECT where the file system allows it,
    and read back byte-exact whatever their length's alignment; smaller objects are
    written normally."""
    direct_writes: list[int] = []
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        if _is_direct(fd):
            direct_writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    supported = _direct_supported(root / "tmp")
    for i, size in enumerate(LARGE_SIZES):
        data = os.urandom(size)
        direct_writes.clear()
        info = store.put(f"packs/p{i}", data, retain_until=T0 + DAY)
        assert info.size == size
        assert store.get(f"packs/p{i}") == data, f"{size} bytes did not round-trip"
        assert sum(direct_writes) == (size - size % 4096 if supported else 0), size
        mode = (root / "objects" / "packs" / f"p{i}").stat().st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    direct_writes.clear()
    store.put("small", b"s" * (local.DIRECT_MIN - 1), retain_until=T0 + DAY)
    assert direct_writes == []
    assert temp_files(root) == []


@pytest.mark.parametrize("failure", ["einval", "short"])
def test_direct_write_refused_or_short_falls_back_to_the_page_cache(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """A device that refuses O_DIRECT's alignment (EINVAL on the first write), or a
    short direct write, still gives a complete, byte-exact object."""
    if not _direct_supported(root / "tmp"):
        pytest.skip("this file system does not take O_DIRECT at all")
    real_write = os.write
    hit: list[int] = []

    def write(fd: int, data: Any) -> int:
        if _is_direct(fd) and not hit:
            hit.append(len(data))
            if failure == "einval":
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            return real_write(fd, memoryview(data)[:1000])  # short and unaligned
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    data = os.urandom(3 * (1 << 20) + 17)
    store.put("packs/x", data, retain_until=T0 + DAY)
    assert hit, "no direct write was attempted"
    assert store.get("packs/x") == data
    assert temp_files(root) == []


def test_disk_full_during_a_direct_write_leaves_nothing(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls: list[int] = []

    def write(fd: int, data: Any) -> int:
        if _is_direct(fd) or calls:
            calls.append(len(data))
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(DiskFull):
        store.put("packs/full", os.urandom(9 * (1 << 20) + 5), retain_until=T0 + DAY)
    monkeypatch.undo()
    assert len(calls) == 2
    assert not store.exists("packs/full")
    assert temp_files(root) == []


# ------------------------------------------------------------ lock files


def test_orphan_lock_file_is_not_an_object(store: LocalStore, root: Path) -> None:
    state = LockState(T0 + 3650 * DAY, RetentionMode.COMPLIANCE, True, 3, T0)
    (root / "locks" / "ghost.json").write_bytes(state.to_json("ghost"))
    assert list(store.list()) == []
    assert not store.exists("ghost")
    for op in (store.head, store.get, store.delete):
        with pytest.raises(NotFound):
            op("ghost")
    with pytest.raises(NotFound):
        store.set_legal_hold("ghost", False)
    info = store.put("ghost", b"real", retain_until=T0 + DAY)
    assert (info.retain_until, info.legal_hold, info.size) == (T0 + DAY, False, 4)


def test_missing_lock_file_means_retained(store: LocalStore, root: Path, clock: FakeClock) -> None:
    """An object whose lock file vanished is never deleted and never given a new one."""
    store.put("rec", b"x", retain_until=T0 + DAY)
    (root / "locks" / "rec.json").unlink()
    clock.advance(10 * DAY)
    assert store.exists("rec") and store.get("rec") == b"x"
    assert list(store.list()) == ["rec"]
    for op in (store.head, store.delete):
        with pytest.raises(CorruptVault):
            op("rec")
    with pytest.raises(CorruptVault):
        store.extend_retention("rec", T0 + 99 * DAY)
    with pytest.raises(CorruptVault):
        store.put("rec", b"x", retain_until=T0 + DAY)
    with pytest.raises(ObjectExists):
        store.put("rec", b"y", retain_until=T0 + DAY)
    assert store.get("rec") == b"x"


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: "not json",
        lambda d: json.dumps({**d, "name": "other"}),
        lambda d: json.dumps({**d, "retain_until": "2020-01-01T00:00:00"}),
        lambda d: json.dumps({**d, "retain_until": "2020-01-01T00:00:00+02:00"}),
        lambda d: json.dumps({**d, "retain_until": 0}),
        lambda d: json.dumps({**d, "mode": "NONE"}),
        lambda d: json.dumps({**d, "legal_hold": "no"}),
        lambda d: json.dumps({**d, "size": -1}),
        lambda d: json.dumps({**d, "size": True}),
        lambda d: json.dumps({**d, "format": 2}),
        lambda d: json.dumps({**d, "extra": 1}),
        lambda d: json.dumps([d]),
    ],
)
def test_damaged_lock_file_is_corrupt(
    store: LocalStore, root: Path, clock: FakeClock, edit: Callable[[dict[str, Any]], str]
) -> None:
    store.put("rec", b"x", retain_until=T0 + DAY)
    lock = root / "locks" / "rec.json"
    lock.chmod(0o644)
    lock.write_text(edit(json.loads(lock.read_text())))
    clock.advance(10 * DAY)
    with pytest.raises(CorruptVault, match="rec"):
        store.head("rec")
    with pytest.raises(CorruptVault):
        store.delete("rec")
    assert store.get("rec") == b"x"


def test_object_altered_on_disk_is_caught_by_head(store: LocalStore, root: Path) -> None:
    store.put("rec", b"x", retain_until=T0 + DAY)
    obj = root / "objects" / "rec"
    obj.chmod(0o644)
    obj.write_bytes(b"xx")
    with pytest.raises(CorruptVault, match="altered"):
        store.head("rec")


def test_lock_state_rules() -> None:
    """The guard in front of every lock-file write (F2-i-B-3)."""
    old = LockState(T0 + 9 * DAY, RetentionMode.COMPLIANCE, False, 1, T0)
    with pytest.raises(Refused, match="shorten"):
        check_transition("n", old, LockState(T0, old.mode, False, 1, T0))
    with pytest.raises(Refused, match="lower"):
        check_transition(
            "n", old, LockState(old.retain_until, RetentionMode.GOVERNANCE, False, 1, T0)
        )
    with pytest.raises(Refused):
        check_transition("n", old, LockState(old.retain_until, old.mode, False, 2, T0))
    check_transition("n", old, LockState(T0 + 10 * DAY, old.mode, True, 1, T0))
    gov = LockState(T0, RetentionMode.GOVERNANCE, False, 1, T0)
    check_transition("n", gov, LockState(T0, RetentionMode.COMPLIANCE, False, 1, T0))


# -------------------------------------------------------------- durability


def test_put_fsyncs_files_and_directories_in_order(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data and lock are fsynced, the lock's directories before the link, the
    object's directories (incl. every new one's parent) after it."""
    events: list[tuple[str, object]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        events.append((kind, (st.st_dev, st.st_ino)))
        real_fsync(fd)

    def link(*args: Any, **kwargs: Any) -> None:
        events.append(("link", None))
        real_link(*args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    store.put("a/b/c", b"data", retain_until=T0 + DAY)
    monkeypatch.undo()

    def ino(p: Path) -> tuple[int, int]:
        st = p.stat()
        return (st.st_dev, st.st_ino)

    linked = events.index(("link", None))
    before, after = events[:linked], events[linked + 1 :]
    assert [k for k, _ in before].count("file") == 2  # data temp and lock temp
    lock_dirs = {ino(root / "locks"), ino(root / "locks/a"), ino(root / "locks/a/b")}
    obj_dirs = {ino(root / "objects"), ino(root / "objects/a"), ino(root / "objects/a/b")}
    assert lock_dirs <= {i for k, i in before if k == "dir"}
    assert obj_dirs <= {i for k, i in after if k == "dir"}


def test_delete_removes_files_and_fsyncs(
    store: LocalStore, root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("d/rec", b"x", retain_until=T0 + DAY)
    clock.advance(DAY)
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store.delete("d/rec")
    monkeypatch.undo()
    assert not (root / "objects/d/rec").exists() and lock_files(root) == []
    for d in (root / "objects/d", root / "locks/d"):
        assert (d.stat().st_dev, d.stat().st_ino) in synced


# ------------------------------------------------------------------- list


def test_list_walks_only_the_prefix_directory(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        store.put(f"tile/entries/{i:03}", b"e", retain_until=T0 + DAY)
        store.put(f"tile/other/{i:03}", b"o", retain_until=T0 + DAY)
        store.put(f"bulk/{i}/x", b"b", retain_until=T0 + DAY)
    scanned: list[Path] = []
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        scanned.append(Path(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert list(store.list("tile/entries/")) == ["tile/entries/000", "tile/entries/001",
                                                 "tile/entries/002"]  # fmt: skip
    assert scanned == [root.resolve() / "objects/tile/entries"]
    scanned.clear()
    assert len(list(store.list("tile/en"))) == 3
    assert scanned == [root.resolve() / "objects/tile", root.resolve() / "objects/tile/entries"]


def test_list_skips_junk(store: LocalStore, root: Path) -> None:
    store.put("ok", b"x", retain_until=T0 + DAY)
    (root / "objects" / "bad name").write_bytes(b"")
    (root / "objects" / "sub").mkdir()
    (root / "objects" / "sub" / "é").write_bytes(b"")
    (root / "objects" / "link").symlink_to(root / "objects" / "ok")
    assert list(store.list()) == ["ok"]


# ---------------------------------------------------------- hostile paths


def test_symlinked_directory_cannot_escape_root(store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (store.root / "objects" / "evil").symlink_to(outside)
    with pytest.raises(StorageError, match="outside"):
        store.put("evil/x", b"x", retain_until=T0 + DAY)
    with pytest.raises(StorageError, match="outside"):
        store.get("evil/secret")
    with pytest.raises(StorageError, match="outside"):
        list(store.list("evil/"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    (store.root / "locks" / "evil2").symlink_to(outside)
    with pytest.raises(StorageError, match="outside"):
        store.put("evil2/x", b"x", retain_until=T0 + DAY)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert list(store.list()) == []


def test_layout_directories_must_be_real(tmp_path: Path, clock: FakeClock) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "objects").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StorageError, match="objects"):
        LocalStore(root, clock.now)


# ------------------------------------------------------------ concurrency


@pytest.mark.parametrize("same", [True, False])
def test_concurrent_puts(root: Path, clock: FakeClock, same: bool) -> None:
    """Threads on two store instances: one object, one winner, the rest retries or refused."""
    stores = [LocalStore(root, clock.now), LocalStore(root, clock.now)]
    results: list[str] = []

    def worker(i: int) -> None:
        data = b"same" if same else f"data-{i}".encode()
        try:
            stores[i % 2].put("rec", data, retain_until=T0 + (i + 1) * DAY)
            results.append("ok")
        except ObjectExists:
            results.append("exists")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == (8 if same else 1)
    if same:
        assert stores[0].head("rec").retain_until == T0 + 8 * DAY
    assert temp_files(root) == []
    for s in stores:
        s.close()


# -------------------------------------------------------------- open_store


def test_open_store_paths_and_file_urls(tmp_path: Path, clock: FakeClock) -> None:
    for url in (str(tmp_path / "p"), (tmp_path / "u").as_uri(), f"file://localhost{tmp_path}/h"):
        s = open_store(url, clock.now)
        assert isinstance(s, LocalStore)
        assert (s.root / "objects").is_dir()
        s.close()
    s = open_store((tmp_path / "with space").as_uri(), clock.now)
    assert isinstance(s, LocalStore) and s.root.name == "with space"
    s.close()


@pytest.mark.parametrize(
    ("url", "word"),
    [("gs://bucket/x", "'gs'"), ("ftp://host/x", "'ftp'"), ("", "empty"),
     ("file://otherhost/x", "otherhost"), ("s3://key:secret@bucket/x", "credentials"),
     ("s3://bucket/x?color=red", "unknown parameters"), ("s3:///x", "s3://bucket")],
)  # fmt: skip
def test_open_store_rejects_unknown_urls(clock: FakeClock, url: str, word: str) -> None:
    with pytest.raises(BadInput, match=word):
        open_store(url, clock.now)


def test_delete_refusal_names_both_reasons(store: LocalStore) -> None:
    store.put("rec", b"x", retain_until=T0 + DAY, legal_hold=True)
    with pytest.raises(Refused) as e:
        store.delete("rec")
    assert "'rec'" in e.value.message
    assert "2025-01-02" in e.value.message and "legal hold" in e.value.message


def test_retry_after_time_passes_keeps_created(store: LocalStore, clock: FakeClock) -> None:
    info = store.put("rec", b"x", retain_until=T0 + DAY)
    clock.advance(timedelta(days=5))
    assert store.put("rec", b"x", retain_until=T0 + DAY).created == info.created


def test_name_too_long_for_the_filesystem(store: LocalStore, root: Path) -> None:
    """A valid name whose segment exceeds NAME_MAX (with the lock suffix) is BadInput."""
    for name in ("x" * 300, "d/" + "y" * 253):
        with pytest.raises(BadInput, match="too long"):
            store.put(name, b"x", retain_until=T0 + DAY)
    with pytest.raises(BadInput, match="too long"):
        store.get("x" * 300)
    assert not store.exists("d/" + "y" * 253)
    assert list(store.list()) == [] and temp_files(root) == [] and lock_files(root) == []


def test_quarantine_moves_only_damaged_bytes_and_keeps_them(store: LocalStore, root: Path) -> None:
    """Repair's only way past a damaged copy: the object moves aside (never deleted)
    only if its bytes do not hash as expected; a healthy object is refused."""
    import hashlib

    store.put("packs/p", b"good bytes", retain_until=T0 + 30 * DAY)
    good = hashlib.sha256(b"good bytes").hexdigest()
    with pytest.raises(Refused, match="intact"):
        store.quarantine("packs/p", good)
    assert store.get("packs/p") == b"good bytes"
    obj = root / "objects" / "packs" / "p"
    obj.chmod(0o644)
    obj.write_bytes(b"bad bytes!")
    dest = store.quarantine("packs/p", good)
    assert not store.exists("packs/p")
    assert (dest / "objects" / "packs" / "p").read_bytes() == b"bad bytes!"
    assert (dest / "locks" / "packs" / "p.json").exists()
    store.put("packs/p", b"good bytes", retain_until=T0 + 30 * DAY)  # created again
    assert store.get("packs/p") == b"good bytes"
    with pytest.raises(NotFound):
        store.quarantine("packs/absent", good)
