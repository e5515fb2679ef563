"""Backups (issue 4): snapshots of trees and streams, incremental runs through the file
cache, restore (whole, partial, as of a date), diff and find, the locks every snapshot
depends on, and what verify says about them.

Requirement ids: F2-i-B-1 (non-rewriteable, non-erasable storage), F2-i-B-2 (verify the
recording), F2-v (a second copy on a separate medium: a backup *is* that copy here), W-01
(retention is set on every object), W-09 (objects can be downloaded and checked).
"""

from __future__ import annotations

import json
import os
import random
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.core.entries import EntryType
from strongroom.core.retention import Period, Policy, Rule, parse_time
from strongroom.errors import BadInput, CorruptVault
from strongroom.vault import lifecycle
from strongroom.vault import restore as rs
from strongroom.vault.backup import Backup, FileCache
from strongroom.vault.ingest import Appender, Item
from strongroom.vault.snapshot import SNAPSHOT_CLASS, check_path, encode_line
from strongroom.vault.verify import verify
from tests.backuptree import allocated, build_tree, describe
from tests.conftest import Cli, VaultFactory
from tests.helpers import failed_checks, verify_report


def _restored(target: Path, original: Path) -> bytes:
    return os.fsencode(target) + b"/" + os.fsencode(original).lstrip(b"/")


def test_round_trip_of_every_file_type(cli: Cli, tmp_path: Path) -> None:
    """F2-i-B-1, W-09: a tree with empty, sparse and large files, hard links, symbolic
    links, a FIFO, a socket, devices, odd names (newline, invalid UTF-8), a path near
    PATH_MAX, special permissions, owners, nanosecond times and extended attributes comes
    back equal: content hashes and metadata, hard links as links, sparse files sparse."""
    made = build_tree(tmp_path / "src")
    src = made["root"]
    before = describe(src)
    out = cli("backup", src, "--json")
    res = json.loads(out.stdout)
    assert res["warnings"] == []
    assert res["files"] >= 20 and res["parent"] is None
    target = tmp_path / "restored"
    cli("restore", res["snapshot"], "--target", target)
    after = describe(_restored(target, src))
    assert after.keys() == before.keys()
    for path in before:
        assert after[path] == before[path], path
    # hard links are links again, the sparse file is still sparse
    r = Path(os.fsdecode(_restored(target, src)))
    assert os.stat(r / "linked").st_ino == os.stat(r / "dir" / "linked-3").st_ino
    # all-zero chunks are not written: at most the two chunks holding data are allocated
    assert allocated(r / "sparse.img") <= (9 << 20) < os.stat(r / "sparse.img").st_size
    assert verify_report(cli)["ok"] is True


def test_incremental_reuses_unchanged_files_and_restores_each_point_in_time(
    cli: Cli, tmp_path: Path
) -> None:
    """F2-i-B-1: the second backup reads only what changed (file cache: size, mtime, ctime,
    inode); insertions inside a large file store little new data; each snapshot restores
    the tree as it was then (by id and with --at); diff names every change."""
    src = tmp_path / "data"
    (src / "docs").mkdir(parents=True)
    # seeded, so the chunk boundaries (and the bound on new bytes below) do not depend on
    # luck: with fresh random data, two maximal 4 MiB chunks around the insertion were
    # possible now and then
    big = random.Random(12).randbytes(12 << 20)
    (src / "big.bin").write_bytes(big)
    for i in range(300):
        (src / "docs" / f"m{i:03d}.txt").write_text(f"message {i}\n" * (i + 1))
    first_tree = describe(src)
    first = json.loads(cli("backup", src, "--json").stdout)
    assert first["unchanged_files"] == 0

    # change: insert into the big file, edit one, chmod one, add one, remove one
    (src / "big.bin").write_bytes(big[: 5 << 20] + b"INSERTED" * 100 + big[5 << 20 :])
    (src / "docs" / "m001.txt").write_text("edited\n")
    os.chmod(src / "docs" / "m002.txt", 0o600)
    (src / "docs" / "new.txt").write_text("a new file\n")
    (src / "docs" / "m003.txt").unlink()
    second_tree = describe(src)
    second = json.loads(cli("backup", src, "--json").stdout)
    assert second["parent"] == first["snapshot"]
    assert second["unchanged_files"] == 297  # 300 - edited - chmodded - removed
    # the chunks around the insertion (about 1 MiB each) and the manifest, not 12 MiB
    assert second["new_bytes"] < 4 << 20

    changes = json.loads(cli("diff", first["snapshot"], second["snapshot"], "--json").stdout)
    got = {(c["change"], c["path"].rsplit("/", 1)[1]) for c in changes}
    assert {("M", "big.bin"), ("M", "m001.txt"), ("U", "m002.txt"), ("+", "new.txt"),
            ("-", "m003.txt")} <= got  # fmt: skip
    assert all(name in {"big.bin", "m001.txt", "m002.txt", "new.txt", "m003.txt", "data", "docs"}
               for _, name in got)  # fmt: skip

    t1, t2 = tmp_path / "r1", tmp_path / "r2"
    cli("restore", first["snapshot"], "--target", t1)
    cli("restore", "latest", "--target", t2)
    assert describe(_restored(t1, src)) == first_tree
    assert describe(_restored(t2, src)) == second_tree
    # --at: the last snapshot taken at or before a moment between the two
    rows = json.loads(cli("snapshots", "--json").stdout)
    assert [r["snapshot"] for r in rows] == [first["snapshot"], second["snapshot"]]
    t3 = tmp_path / "r3"
    cli("restore", "latest", "--at", rows[0]["time"], "--target", t3)
    assert describe(_restored(t3, src)) == first_tree
    assert verify_report(cli)["ok"] is True


def test_file_cache_is_rebuilt_from_the_snapshot(cli: Cli, tmp_path: Path) -> None:
    """The file cache is derived: deleted, corrupted or stale, the next backup rebuilds
    it from the last snapshot and still skips unchanged files; --force reads all."""
    src = tmp_path / "data"
    src.mkdir()
    for i in range(50):
        (src / f"f{i}").write_bytes(os.urandom(5000))
    cli("backup", src)
    cache_dir = cli.vault / "state" / "files"
    (cache,) = cache_dir.iterdir()
    cache.unlink()
    assert json.loads(cli("backup", src, "--json").stdout)["unchanged_files"] == 50
    (cache,) = cache_dir.iterdir()
    cache.write_bytes(b"garbage")
    assert json.loads(cli("backup", src, "--json").stdout)["unchanged_files"] == 50
    forced = json.loads(cli("backup", src, "--json", "--force").stdout)
    assert forced["unchanged_files"] == 0 and forced["new_bytes"] < 50_000  # deduplicated
    assert verify_report(cli)["ok"] is True


def test_file_cache_format_round_trip(tmp_path: Path) -> None:
    c = FileCache("01ABC")
    node = {"type": "file", "path": "a/b", "size": 3, "mtime_ns": 1, "ctime_ns": 2,
            "inode": 3, "chunks": [["packs/2030-01/" + "0" * 32, 1, 2, 3, "ab" * 32]]}  # fmt: skip
    c.add(node, encode_line(node))
    weird = dict(node, path_b64="/w==", chunks=[])
    del weird["path"]
    c.add(weird, encode_line(weird))
    c.add(dict(node, path="x", changed=True), b"{}\n")  # changed: never cached
    expected = dict(c.files)
    c.save(tmp_path / "c")
    back = FileCache.load(tmp_path / "c")
    assert back is not None and back.snapshot == "01ABC" and back.files == expected
    assert set(back.files) == {b"a/b", b"\xff"}
    (tmp_path / "c").write_bytes(FileCache.MAGIC + b"not zstd")
    assert FileCache.load(tmp_path / "c") is None


def test_partial_restore_find_and_stdout(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "data"
    (src / "a" / "deep").mkdir(parents=True)
    (src / "b").mkdir()
    (src / "a" / "deep" / "report.pdf").write_bytes(b"%PDF-1.7 quarterly")
    (src / "a" / "x.txt").write_text("x")
    (src / "b" / "report.pdf").write_bytes(b"%PDF-1.7 other")
    snap = json.loads(cli("backup", src, "--json").stdout)["snapshot"]
    target = tmp_path / "part"
    cli("restore", snap, str(src / "a" / "deep"), "--target", target)
    got = describe(target)
    names = sorted(p.rsplit(b"/", 1)[-1] for p in got)
    assert b"report.pdf" in names and b"x.txt" not in names
    hits = json.loads(cli("find", "*.pdf", "--json").stdout)
    assert sorted(h["path"] for h in hits) == sorted(
        [str(src / "a" / "deep" / "report.pdf"), str(src / "b" / "report.pdf")]
    )
    one = cli("restore", snap, str(src / "b" / "report.pdf"), "--stdout").stdout
    assert one == b"%PDF-1.7 other"
    missing = cli("restore", snap, "/no/such/path", "--target", tmp_path / "m", check=False)
    assert missing.returncode == 3
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("mine")
    refused = cli("restore", snap, "--target", busy, check=False)
    assert refused.returncode == BadInput.exit_code and b"not empty" in refused.stderr
    assert (busy / "keep").read_text() == "mine"


def test_stdin_backup(cli: Cli, tmp_path: Path) -> None:
    """`producer | strongroom backup --stdin --name NAME`: the stream is one file."""
    data = os.urandom(2 << 20) + b"-- end of dump --\n"
    res = json.loads(cli("backup", "--stdin", "--name", "db.sql", "--json", input=data).stdout)
    assert cli("restore", res["snapshot"], "db.sql", "--stdout").stdout == data
    cli("restore", res["snapshot"], "--target", tmp_path / "t")
    assert (tmp_path / "t" / "db.sql").read_bytes() == data
    bad = cli("backup", "--stdin", "--name", "../escape", input=b"x", check=False)
    assert bad.returncode == BadInput.exit_code


def test_overlong_path_is_reported_and_the_run_exits_incomplete(cli: Cli, tmp_path: Path) -> None:
    """A path longer than PATH_MAX cannot be read by name: the snapshot is stored without
    it, the path is named in a warning, and the command exits 11 (incomplete)."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "ok").write_text("fine")
    fd = os.open(src, os.O_RDONLY)
    depth = 0
    try:
        while len(os.fsencode(src)) + depth * 251 < 4200:
            os.mkdir("d" * 250, dir_fd=fd)
            nfd = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, depth = nfd, depth + 1
        os.close(os.open("too-deep", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    p = cli("backup", src, "--json", check=False)
    assert p.returncode == 11, p.stderr
    res = json.loads(p.stdout)
    assert any("longer than" in w for w in res["warnings"])
    assert b"warning:" in p.stderr
    listed = json.loads(cli("snapshots", "--json").stdout)
    assert [r["snapshot"] for r in listed] == [res["snapshot"]]
    assert cli("restore", res["snapshot"], str(src / "ok"), "--stdout").stdout == b"fine"


# --- in-process: changing files, retention and locks, verify ---------------------------------


def test_file_changing_while_read_is_captured_consistently_or_reported(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """A file that changes once while it is read is read again and captured as it is
    now; one that keeps changing is kept as read, marked "changed" and reported."""
    src = tmp_path / "data"
    src.mkdir()
    for name, size in (("once-small", 1000), ("always-small", 1000), ("once-big", 600_000),
                       ("always-big", 600_000), ("calm", 1000)):  # fmt: skip
        (src / name).write_bytes(os.urandom(size))
    calls: dict[str, int] = {}

    def meddle(path: bytes) -> None:
        name = os.fsdecode(path).rsplit("/", 1)[1]
        calls[name] = calls.get(name, 0) + 1
        if name.startswith("always") or (name.startswith("once") and calls[name] == 1):
            with open(path, "ab") as f:
                f.write(b"+more")

    with vaults.create() as v:
        res = Backup(v, after_read=meddle).run([str(src)])
        m = rs.load(v, rs.resolve(v, res.snapshot))
    nodes = {os.fsdecode(n.path).rsplit("/", 1)[1]: n for n in m.nodes}
    assert calls["once-small"] == 2 and calls["once-big"] == 2 and calls["calm"] == 1
    for name in ("once-small", "once-big"):
        assert "changed" not in nodes[name].raw
        assert nodes[name].size == (src / name).stat().st_size  # as it is now
    for name in ("always-small", "always-big"):
        assert nodes[name].raw.get("changed") is True
        assert any(name in w and "changed while it was read" in w for w in res.warnings)
    assert len(res.warnings) == 2


def _packs_of(v: object, snapshot: str) -> list[str]:
    return v.catalog.packs_of(snapshot)  # type: ignore[attr-defined, no-any-return]


def test_every_object_a_snapshot_needs_is_locked_at_least_as_long(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """W-01: every pack a snapshot depends on (including those of unchanged files reused
    from earlier snapshots) is retained on the store until at least the snapshot's
    retain-until; a reused pack is extended in blocks (the lock margin), not every day;
    disposing of an expired snapshot keeps what a live one still needs."""
    vaults.policy = Policy((Rule("backups", Period(days=30), SNAPSHOT_CLASS),))
    src = tmp_path / "data"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}").write_bytes(os.urandom(20_000))
    with vaults.create() as v:
        s1 = Backup(v, lock_margin=timedelta(days=10)).run([str(src)])
        packs1 = _packs_of(v, s1.snapshot)
        assert len(packs1) >= 1
        for p in packs1:
            assert v.store.head(p).retain_until >= s1.retain_until + timedelta(days=10)

        def extends() -> int:
            return sum(1 for _, e in v.entries() if e.type is EntryType.OBJECT_EXTEND)

        vaults.clock.advance(timedelta(days=5))
        s2 = Backup(v, lock_margin=timedelta(days=10)).run([str(src)])
        assert s2.unchanged == 20
        assert extends() == 0  # within the margin: nothing to extend
        vaults.clock.advance(timedelta(days=7))  # day 12: past the margin
        v.confirm_clock("test: time passes")
        s3 = Backup(v, lock_margin=timedelta(days=10)).run([str(src)])
        assert extends() >= 1
        for snap in (s1, s2, s3):
            for p in _packs_of(v, snap.snapshot):
                assert v.store.head(p).retain_until >= snap.retain_until, (snap, p)
        assert set(packs1) <= set(_packs_of(v, s3.snapshot))
        # day 38: s1 (day 30) and s2 (day 35) expired, s3 (day 42) live and needs the packs
        vaults.clock.advance(timedelta(days=26))
        v.confirm_clock("test: time passes")
        plan = lifecycle.dispose(v)
        assert sorted(r["id"] for r in plan.records) == sorted([s1.snapshot, s2.snapshot])
        for p in packs1:
            assert v.store.exists(p)
        target = tmp_path / "after-dispose"
        rs.restore(v, rs.resolve(v, "latest"), target)
        assert describe(Path(os.fsdecode(_restored(target, src)))) == describe(src)
        assert verify(v).ok


def test_verify_names_the_snapshot_when_a_file_chunk_is_lost(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """F2-i-B-2: a pack holding only file chunks (not the manifest) that disappears from
    the store makes verify fail and name the snapshot; the snapshot has an inclusion
    proof like any record."""
    from strongroom.vault.proofs import check_proof, make_proof

    src = tmp_path / "data"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(20 << 20))  # more than one 16 MiB pack
    with vaults.create() as v:
        res = Backup(v).run([str(src)])
        proof = make_proof(v, res.snapshot)
        check_proof(proof)
        entry = next(e for _, e in v.entries() if e.type is EntryType.RECORD_APPEND)
        packs = set(v.catalog.packs_of(res.snapshot))
        file_only = sorted(packs - set(entry["packs"]))
        assert file_only, "expected a pack with file chunks only"
        victim = v.store.root / "objects" / file_only[0]  # type: ignore[attr-defined]
        victim.chmod(0o600)
        victim.unlink()
        report = verify(v)
        assert not report.ok
        failed = [c for c in report.checks if not c.ok]
        assert any(res.snapshot in c.records for c in failed)
        assert any(file_only[0] in c.objects for c in failed)


def _hostile_snapshot(v: object, lines: list[dict[str, object]]) -> str:
    header = {"format": "strongroom-snapshot", "version": 1, "nodes": len(lines)}
    content = b"".join(encode_line(x) for x in [header, *lines])
    got: list[str] = []
    with Appender(v, on_ack=lambda r: got.append(r.record)) as ap:  # type: ignore[arg-type]
        ap.add(Item.from_bytes(content, record_class=SNAPSHOT_CLASS, source_id="evil"))
    return got[0]


@pytest.mark.parametrize(
    "lines",
    [
        [{"path": "../escape", "type": "file", "mode": 420, "size": 0, "chunks": []}],
        [{"path": "/etc/evil", "type": "file", "mode": 420, "size": 0, "chunks": []}],
        [{"path": "a/../../x", "type": "dir", "mode": 493}],
        [
            {"path": "a", "type": "symlink", "target": "/tmp", "mode": 511},
            {"path": "a/planted", "type": "file", "mode": 420, "size": 0, "chunks": []},
        ],
        [
            {"path": "a/b", "type": "file", "mode": 420, "size": 0, "chunks": []},
            {"path": "a", "type": "symlink", "target": "/", "mode": 511},
        ],
        [{"path": "h", "type": "hardlink", "link": "../../etc/passwd", "mode": 420}],
        [{"path_b64": "Li4=", "type": "file", "mode": 420, "size": 0, "chunks": []}],
    ],
)
def test_restore_refuses_a_manifest_path_that_escapes_the_target(
    vaults: VaultFactory, tmp_path: Path, lines: list[dict[str, object]]
) -> None:
    """A snapshot whose manifest tries to leave the target (.., absolute paths, a symlink
    used as a directory, a hard link outside) is refused before anything is written."""
    with vaults.create() as v:
        sid = _hostile_snapshot(v, lines)
        target = tmp_path / "target"
        with pytest.raises(CorruptVault):
            rs.restore(v, rs.resolve(v, sid), target)
        assert not target.exists() or list(target.iterdir()) == []
    assert not (tmp_path / "escape").exists()


@given(st.binary(min_size=1, max_size=64))
def test_accepted_paths_stay_inside(path: bytes) -> None:
    """Whatever path check_path accepts resolves inside the directory it is joined to."""
    try:
        check_path(path)
    except CorruptVault:
        return
    joined = os.path.normpath(b"/target/" + path)
    assert joined.startswith(b"/target/")
    assert b"\0" not in path


@pytest.mark.slow
def test_kill_9_during_backup_leaves_no_half_snapshot(cli: Cli, tmp_path: Path) -> None:
    """F2-i-B-1: a backup SIGKILLed at random points leaves no snapshot that is not
    whole (verify checks every listed snapshot's chunks), the next run completes, and
    the last snapshot restores the tree exactly."""
    import random
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "data"
    src.mkdir()
    for i in range(600):
        (src / f"f{i}").write_bytes(os.urandom(20_000))
    (src / "large").write_bytes(os.urandom(40 << 20))
    cmd = [sys.executable, "-m", "strongroom", "--vault", str(cli.vault), "--key-file",
           str(cli.key_file), "backup", str(src), "--force"]  # fmt: skip
    t0 = time.monotonic()
    subprocess.run(cmd, env=cli.env, capture_output=True, check=True)
    full = time.monotonic() - t0  # kill points are spread over a whole run's length
    rng = random.Random(4)
    killed = 0
    for round_ in range(6):
        p = subprocess.Popen(cmd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.1, 0.9) * full)
        p.send_signal(signal.SIGKILL)
        killed += p.wait() == -signal.SIGKILL
        listed = json.loads(cli("snapshots", "--json").stdout)
        rep = verify_report(cli)
        assert rep["ok"] is True, (round_, failed_checks(rep))
        assert all(r["files"] == 601 for r in listed), listed  # never a partial tree
    assert killed >= 4  # most runs were really cut short
    res = json.loads(cli("backup", src, "--json").stdout)
    assert json.loads(cli("snapshots", "--json").stdout)[-1]["snapshot"] == res["snapshot"]
    t = tmp_path / "t"
    cli("restore", "latest", "--target", t)
    assert describe(_restored(t, src)) == describe(src)


def test_snapshot_listing_shows_sizes_and_dedup(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(100_000))
    cli("backup", src, "--tag", "daily")
    cli("backup", src, "--tag", "daily", "--tag", "extra")
    rows = json.loads(cli("snapshots", "--json").stdout)
    assert len(rows) == 2
    assert rows[0]["bytes"] == rows[1]["bytes"] == 100_000
    assert rows[0]["new_bytes"] >= 100_000 > rows[1]["new_bytes"]
    assert rows[1]["tags"] == ["daily", "extra"]
    assert parse_time(rows[0]["retain_until"]) > parse_time(rows[0]["time"])
    text = cli("snapshots").stdout.decode()
    assert rows[0]["snapshot"][:6] in text


def test_verify_fails_a_snapshot_whose_files_use_a_pack_it_does_not_list(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """A snapshot must list (``refs``) every pack its files use — that is what keeps them
    retained and held with it. A manifest naming a real chunk in a pack it does not list
    fails verify, naming the snapshot and the pack."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(10_000))
    with vaults.create() as v:
        good = Backup(v).run([str(src)])
        node = next(n for n in rs.load(v, rs.resolve(v, good.snapshot)).nodes if n.chunks)
        pack, off, length, plain, cid = node.chunks[0]
        line = {"path": "copy", "type": "file", "mode": 420, "size": plain,
                "chunks": [[pack, off, length, plain, cid.hex()]]}  # fmt: skip
        sid = _hostile_snapshot(v, [line])
        report = verify(v)
        failed = [c for c in report.checks if not c.ok]
        assert failed and all(c.name == "objects" for c in failed)
        assert sid in failed[0].records and pack in failed[0].objects
        assert any("does not list" in p for p in failed[0].problems)


def test_backup_policy_command_prints_the_documented_policy(cli: Cli) -> None:
    """Issue 4 item 5: the write-only policy is printable for a bucket (the same document
    tests/test_s3_writeonly.py proves on Ceph RGW and SeaweedFS)."""
    from strongroom.store.s3policy import backup_writer_policy

    arn = "arn:aws:iam::123456789012:user/backup"
    out = cli("backup-policy", "bkt", arn, "--prefix", "vault1").stdout
    assert json.loads(out) == backup_writer_policy("bkt", arn, "vault1")
    denied = {a for st in json.loads(out)["Statement"] if st["Effect"] == "Deny"
              for a in st["Action"]}  # fmt: skip
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
            "s3:PutObjectLegalHold", "s3:PutLifecycleConfiguration"} <= denied  # fmt: skip


def test_partial_restore_of_a_hard_link_whose_first_name_is_left_out(
    cli: Cli, tmp_path: Path
) -> None:
    """A hard link restored without the file it links to becomes a copy of that file."""
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    (src / "first").write_bytes(b"shared inode")
    os.link(src / "first", src / "sub" / "second")
    snap = json.loads(cli("backup", src, "--json").stdout)["snapshot"]
    target = tmp_path / "t"
    cli("restore", snap, str(src / "sub"), "--target", target)
    restored = Path(os.fsdecode(_restored(target, src))) / "sub" / "second"
    assert restored.read_bytes() == b"shared inode"
    assert not (Path(os.fsdecode(_restored(target, src))) / "first").exists()


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (every thread's /proc children list)."""
    out: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.update(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ["backup", "verify"])
def test_worker_processes_die_with_a_killed_command(cli: Cli, tmp_path: Path, command: str) -> None:
    """The forked workers of backup (reading and sealing files) and of verify (checking
    packs) hold the vault's keys: when their command is SIGKILLed mid-run, none of them
    lives on (PR_SET_PDEATHSIG), whatever it was doing."""
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "data"
    src.mkdir()
    for i in range(3000):
        (src / f"f{i}").write_bytes(os.urandom(30_000))
    if command == "verify":
        cli("backup", src)
    args = ["backup", str(src), "--force"] if command == "backup" else ["verify"]
    cmd = [sys.executable, "-m", "strongroom", "--vault", str(cli.vault), "--key-file",
           str(cli.key_file), *args]  # fmt: skip
    p = subprocess.Popen(cmd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2 and p.poll() is None and time.monotonic() < deadline:
        workers = _children(p.pid)
        time.sleep(0.005)
    assert len(workers) >= 2, f"{command} started no worker processes (exit {p.poll()})"
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], f"{command}'s workers outlived it"
