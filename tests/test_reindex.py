"""The catalog is derived: a rebuild from the store and ledger equals the original (F2-vi)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from strongroom.catalog import Query
from strongroom.core.retention import Period, Policy, Rule
from strongroom.vault import lifecycle, proofs
from strongroom.vault.ingest import Appender, Item
from strongroom.vault.verify import verify
from tests.conftest import VaultFactory


def test_rebuild_equals_original_after_every_kind_of_event(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    vaults.policy = Policy((Rule("short", Period(1), "short"),))
    with vaults.create() as v:
        with Appender(v, batch_records=13) as ap:
            for i in range(60):
                cls = "chat" if i % 3 else "short"
                body = (
                    f'{{"user": "u{i % 5}@x", "to": ["u{(i + 1) % 5}@x"], '
                    f'"channel": "desk", "message": "trade {i} falcon"}}'
                )
                ap.add(Item.from_bytes(body.encode(), record_class=cls, source_id=str(i)))
            ap.add(Item.from_bytes(b"{broken", record_class="chat", source_id="bad"))
            ap.add(Item.from_bytes(bytes(range(256)) * 2000, source_id="bin"))
        ids = v.catalog.record_ids(Query())
        h1 = lifecycle.place_hold(v, records=ids[:3], reason="r1")
        lifecycle.place_hold(v, query=Query("falcon", "chat"), reason="r2")
        lifecycle.release_hold(v, h1, "done")
        lifecycle.extend_record(v, ids[5], v.now() + timedelta(days=4000))
        v.rotate_key()
        with Appender(v) as ap:
            ap.add(
                Item.from_bytes(
                    b'{"message": "late falcon"}', record_class="chat", source_id="late"
                )
            )
        vaults.clock.advance(timedelta(days=400))
        v.confirm_clock("test")
        plan = lifecycle.dispose(v)
        assert plan.records and plan.packs
        assert verify(v).ok
        original = v.catalog.dump()
        rebuilt = proofs.rebuild_catalog(v, tmp_path / "rebuilt.sqlite")
        assert rebuilt.dump() == original
        rebuilt.close()


def test_catalog_catches_up_after_losing_its_tail(vaults: VaultFactory) -> None:
    with vaults.create() as v:
        with Appender(v) as ap:
            ap.add(Item.from_bytes(b"one", source_id="1"))
        snapshot = (vaults.path / "state" / "catalog.sqlite").read_bytes()
        v.catalog.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with Appender(v) as ap:
            ap.add(Item.from_bytes(b"two words", source_id="2"))
        full = v.catalog.dump()
    # an older catalog (e.g. the process died before indexing) is brought up to date on open
    for suffix in ("-wal", "-shm"):
        Path(str(vaults.path / "state" / "catalog.sqlite") + suffix).unlink(missing_ok=True)
    (vaults.path / "state" / "catalog.sqlite").write_bytes(snapshot)
    with vaults.open() as v:
        assert len(v.catalog.search(Query("words"))) == 1
        assert verify(v, record=False).ok
        assert {k: x for k, x in v.catalog.dump().items() if k != "meta"} == {
            k: x for k, x in full.items() if k != "meta"
        }


def test_live_search_text_of_a_streamed_record_equals_the_rebuilt_one(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """Regression (found in review): a record between the single-chunk limit and the
    indexing limit was indexed live from its first 256 KiB only."""
    body = ("filler " * 60_000 + " needleword ").encode()  # ~420 KiB, word after 256 KiB
    with vaults.create() as v:
        with Appender(v) as ap:
            ap.add(Item.from_bytes(body, source_id="big"))
        assert len(v.catalog.search(Query("needleword"))) == 1
        rebuilt = proofs.rebuild_catalog(v, tmp_path / "r.sqlite")
        assert rebuilt.dump()["fts"] == v.catalog.dump()["fts"]
        rebuilt.close()
