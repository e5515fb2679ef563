"""The catalog's indexer process (ADR 0011): a long ingest has its catalog rows written
by a process of its own. The catalog it builds must equal a rebuild from the ledger
(F2-vi: the catalog is derived data), re-deliveries must still be recognised while it is
up to two batches behind (F2-ii-A: no duplicate record), and its failures — a killed
process, a full disk — must neither lose an acknowledged record nor leave a traceback
(F2-i-A, F2-ii-B)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from strongroom.catalog import Catalog, Query
from strongroom.errors import CorruptVault, DiskFull
from strongroom.vault import lifecycle, proofs
from strongroom.vault.catalogproc import SLOTS, Batch, IndexerProcess, stage_batch
from strongroom.vault.ingest import INDEXER_PROCESS_AFTER, Appender, AppendResult, Item
from strongroom.vault.options import Options, Secret
from strongroom.vault.vault import Vault
from strongroom.vault.verify import verify
from tests.conftest import PASSPHRASE, VaultFactory
from tests.test_disk_full import small_fs  # noqa: F401 (a fixture)

BATCH = INDEXER_PROCESS_AFTER  # every batch goes to the process once it runs


def chat(i: int, word: str = "falcon") -> Item:
    body = json.dumps(
        {"user": f"u{i % 7}@example.com", "channel": "#desk", "text": f"trade {i} {word}"}
    )
    return Item.from_bytes(body.encode(), record_class="chat", source="mm", source_id=f"m{i}")


def ingest(v: Vault, items: list[Item], acks: list[AppendResult]) -> int:
    """Append ``items`` in batches of BATCH; returns how many batches the process got."""
    with Appender(v, on_ack=acks.append, batch_records=BATCH) as ap:
        for it in items:
            ap.add(it)
        proc = v._indexer_proc
    return 0 if proc is None else proc._sent


def test_catalog_built_by_the_process_equals_a_rebuild(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    acks: list[AppendResult] = []
    with vaults.create() as v:
        items = [chat(i) for i in range(3 * BATCH + 17)]
        items.insert(5, Item.from_bytes(b"{not json", record_class="chat", source_id="bad"))
        items.insert(9, Item.from_bytes(os.urandom(300_000), source_id="blob"))  # 2 chunks
        sent = ingest(v, items, acks)
        assert sent >= 3, "the indexer process indexed the batches"
        assert len(acks) == len(items) and not any(a.duplicate for a in acks)
        assert verify(v).ok
        chats = [a.record for i, a in enumerate(acks) if i not in (5, 9)]
        assert v.catalog.record_ids(Query("falcon")) == chats
        bad = v.catalog.record(acks[5].record)
        assert bad is not None and "unparsed" in bad["flags"]
        original = v.catalog.dump()
        rebuilt = proofs.rebuild_catalog(v, tmp_path / "rebuilt.sqlite")
        assert rebuilt.dump() == original
        rebuilt.close()


def test_redeliveries_are_recognised_while_the_process_is_behind(vaults: VaultFactory) -> None:
    """Records of the last SLOTS batches may not be in the catalog yet; delivered again
    in the same session they are still the same records."""
    acks: list[AppendResult] = []
    with vaults.create() as v:
        n = (SLOTS + 1) * BATCH
        items = [chat(i) for i in range(n)]
        assert ingest(v, items + items, acks) >= SLOTS + 1
        first, again = acks[:n], acks[n:]
        assert not any(a.duplicate for a in first)
        assert all(a.duplicate for a in again)
        assert [a.record for a in again] == [a.record for a in first]
        assert v.catalog.counts()["records"] == n


def test_query_hold_batches_are_indexed_in_process_and_held(vaults: VaultFactory) -> None:
    """A query hold must catch new records before their commit returns (their packs are
    held at once): with one active, batches are not sent to the process."""
    acks: list[AppendResult] = []
    with vaults.create() as v:
        hold = lifecycle.place_hold(v, query=Query("heron"), reason="litigation")
        items = [chat(i, "heron" if i % 2 else "falcon") for i in range(2 * BATCH)]
        assert ingest(v, items, acks) == 0
        held = [a.record for i, a in enumerate(acks) if i % 2]
        assert all(v.catalog.held(r) == [hold] for r in held)
        assert verify(v).ok


def test_a_batch_is_refused_unless_it_follows_what_is_indexed(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.set_meta("indexed", "10")
    with pytest.raises(CorruptVault, match="from serial 12"):
        stage_batch(catalog, (12, [], {}, {}, {}, {}))
    catalog.close()


def _gone(pid: int, within: float) -> bool:
    """Whether ``pid`` has ended (a zombie not reaped yet has ended too)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rindex(")") + 2] in "ZX":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("when", ["mid-batch", "before-verdict", "before-next-batch"])
def test_killing_the_process_loses_nothing_and_fails_nothing(
    vaults: VaultFactory, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Whenever the process dies — while it indexes a batch, between a batch and its
    verdict, or while idle — the ingest goes on: what it committed stays, the rest is
    indexed from the ledger in process, and the catalog equals a rebuild."""
    acks: list[AppendResult] = []
    with vaults.create() as v:
        killed: list[int] = []

        def kill(proc: IndexerProcess) -> None:
            if not killed:
                killed.append(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                assert _gone(proc.pid, 10)

        if when == "before-verdict":
            finish = IndexerProcess.finish

            def dying_finish(self: IndexerProcess, durable: bool) -> object:
                kill(self)
                return finish(self, durable)

            monkeypatch.setattr(IndexerProcess, "finish", dying_finish)
        elif when == "before-next-batch":
            begin = IndexerProcess.begin

            def dying_begin(self: IndexerProcess, batch: Batch) -> None:
                if self._sent == 1:
                    v.catalog.wait()  # the first batch is committed: it dies idle
                    kill(self)
                begin(self, batch)

            monkeypatch.setattr(IndexerProcess, "begin", dying_begin)
        with Appender(v, on_ack=acks.append, batch_records=BATCH) as ap:
            for i in range(BATCH):
                ap.add(chat(i))
            proc = v._indexer_proc
            assert proc is not None
            if when == "mid-batch":
                kill(proc)
            for i in range(BATCH, 3 * BATCH + 7):
                ap.add(chat(i))
        assert killed and not proc.alive
        assert len(acks) == 3 * BATCH + 7 and not any(a.duplicate for a in acks)
        assert v.catalog.counts()["records"] == len(acks)
        assert verify(v).ok
        original = v.catalog.dump()
    with vaults.open(fresh_catalog=True) as v2:
        assert v2.catalog.dump() == original


def test_a_new_appender_catches_up_after_the_process_ended(vaults: VaultFactory) -> None:
    """The process dies after an ingest, its last batch perhaps unanswered: the next
    appender on the same open vault starts from a catalog caught up from the ledger."""
    acks: list[AppendResult] = []
    with vaults.create() as v:
        ingest(v, [chat(i) for i in range(BATCH + 10)], acks)
        proc = v._indexer_proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        assert _gone(proc.pid, 10)
        with Appender(v, on_ack=acks.append) as ap:
            ap.add(chat(BATCH + 10))
        assert v.catalog.counts()["records"] == len(acks) == BATCH + 11
        assert verify(v).ok


_KILLED_PARENT = textwrap.dedent(
    """
    import json, os, signal, sys
    from strongroom.vault.ingest import Appender, Item
    from strongroom.vault.options import Options, Secret
    from strongroom.vault.vault import Vault
    v = Vault.open(sys.argv[1], Secret(passphrase=sys.argv[2]), Options(kdf_strength="test"))
    acked = open(sys.argv[3], "a")
    def ack(r):
        acked.write(r.record + "\\n"); acked.flush()
    ap = Appender(v, on_ack=ack, batch_records=1000)
    for i in range(2500):
        ap.add(Item.from_bytes(json.dumps({"text": f"m {i}"}).encode(), source_id=str(i)))
        if i == 2200:
            print(v._indexer_proc.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_ingest_takes_its_indexer_process_with_it(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """F2-i-A: SIGKILL the ingest; its indexer process ends too (end of input), the writer
    lock is free again, and the next open finds every acknowledged record."""
    vaults.create().close()
    acked = tmp_path / "acked"
    p = subprocess.run(
        [sys.executable, "-c", _KILLED_PARENT, str(vaults.path), PASSPHRASE, str(acked)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr
    child = int(p.stdout.split()[0])
    assert _gone(child, 15), "the indexer process outlived the killed ingest"
    ids = acked.read_text().split()
    assert len(ids) >= 2000
    with Vault.open(str(vaults.path), Secret(passphrase=PASSPHRASE), vaults.options()) as v:
        for rid in ids:
            assert v.catalog.record(rid) is not None
        assert verify(v).ok


@pytest.mark.slow
def test_full_disk_while_the_indexer_process_writes(small_fs: Path) -> None:  # noqa: F811
    """F2-ii-B on a real full disk (an 8 MiB tmpfs): the catalog's inserts, now made by
    the indexer process, fill it too — a clear DiskFull, whichever write hits it, and
    once space is freed every acknowledged record is there and the vault verifies."""
    vault_dir = small_fs / "vault"
    opts = Options(actor="user:test", kdf_strength="test")
    secret = Secret(passphrase=PASSPHRASE)
    Vault.create(str(vault_dir), secret, opts).close()
    st = os.statvfs(small_fs)
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - (3 << 20)))  # ~3 MiB left
    acks: list[AppendResult] = []
    sent = 0
    failure: DiskFull | None = None
    for attempt in range(50):
        try:
            with Vault.open(str(vault_dir), secret, opts) as v:
                sent += ingest(v, [chat(attempt * 10_000 + i) for i in range(BATCH + 300)], acks)
        except DiskFull as e:
            failure = e
            break
    assert failure is not None, "the disk never filled up"
    assert sent, "the indexer process was not used"
    assert "Traceback" not in str(failure)
    print(f"filled after {len(acks)} records: {failure}")
    filler.unlink()
    with Vault.open(str(vault_dir), secret, opts) as v:
        assert verify(v).ok
        for a in acks:
            assert v.catalog.record(a.record) is not None
