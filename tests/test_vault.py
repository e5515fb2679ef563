"""Vault behaviour through the Python API: records, dedup, retention, holds, disposal, clock.

Requirement ids: F1-DEF (view/download byte-exact), F2-i-B-3 (extend never shorten),
F2-i-B-4 (holds), F2-i-B-6 (clock), F3-iii (audit of every action), FINRA 4511 (6y default).
"""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.catalog import DEDUP_MIN, Query
from strongroom.core.entries import EntryType
from strongroom.core.retention import Period, Policy, Rule, add_period, parse_time
from strongroom.errors import ClockPaused, NotFound, ObjectExists, Refused
from strongroom.store.base import RetentionMode
from strongroom.vault import lifecycle
from strongroom.vault.ingest import Appender, AppendResult, Item
from strongroom.vault.vault import Vault
from strongroom.vault.verify import verify
from tests.conftest import VaultFactory


def append(v: Vault, data: bytes, **kw: str) -> AppendResult:
    acks: list[AppendResult] = []
    with Appender(v, on_ack=acks.append) as ap:
        ap.add(Item.from_bytes(data, **kw))
    assert len(acks) == 1
    return acks[0]


def read(v: Vault, rid: str) -> bytes:
    buf = io.BytesIO()
    v.read_record(rid, buf)
    return buf.getvalue()


def types(v: Vault) -> list[EntryType]:
    return [e.type for _, e in v.entries()]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff" * 1000,
        "héllo wörld — ✓ 日本語".encode(),
        os.urandom(300 << 10),  # above the single-chunk limit: goes through FastCDC
        os.urandom(3 << 20) + b"a" * (3 << 20),
    ],
    ids=["empty", "binary", "unicode", "300k", "6m-mixed"],
)
def test_round_trip_byte_exact(vault: Vault, data: bytes) -> None:
    """F1-DEF: every record downloads byte-exact and hashes to the value captured at ingest."""
    r = append(vault, data, filename="x", source_id="a")
    assert r.sha256 == hashlib.sha256(data).hexdigest()
    assert read(vault, r.record) == data
    assert verify(vault, deep=True).ok


@given(name=st.text(min_size=1, max_size=200), data=st.binary(max_size=2000))
def test_odd_names_and_content_round_trip(vaults: VaultFactory, name: str, data: bytes) -> None:
    if not vaults.path.exists():
        vaults.create().close()
    with vaults.open() as v:
        r = append(v, data, filename=name, source_id=name)
        assert read(v, r.record) == data
        assert v.catalog.record(r.record)["filename"] == name  # type: ignore[index]


def test_reappend_same_source_and_content_returns_existing(vault: Vault) -> None:
    data = b"same bytes " * 1000  # over DEDUP_MIN: looked up in the catalog across batches
    a = append(vault, data, source="mm", source_id="post-1")
    b = append(vault, data, source="mm", source_id="post-1")
    assert b.duplicate and b.record == a.record and b.serial == a.serial
    c = append(vault, data, source="mm", source_id="post-2")
    assert not c.duplicate and c.record != a.record
    chunks = vault.catalog.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert chunks == 1  # content deduplicated across records
    assert read(vault, c.record) == data


def test_small_chunks_are_not_in_the_chunks_table(vault: Vault) -> None:
    """Only chunks of DEDUP_MIN bytes or more are ever looked up, so only they get rows;
    a reindex gives the same table."""
    append(vault, b"x" * (DEDUP_MIN - 1), source_id="small")
    append(vault, os.urandom(DEDUP_MIN), source_id="large")
    rows = vault.catalog.db.execute("SELECT plain_len FROM chunks").fetchall()
    assert rows == [(DEDUP_MIN,)]


def test_duplicate_within_one_batch(vault: Vault) -> None:
    acks: list[AppendResult] = []
    with Appender(vault, on_ack=acks.append) as ap:
        ap.add(Item.from_bytes(b"x", source_id="1"))
        ap.add(Item.from_bytes(b"x", source_id="1"))
    # every add is acknowledged once durable: the original, then its duplicate
    assert acks[0].record == acks[1].record
    assert [a.duplicate for a in acks] == [False, True]
    assert acks[0].serial == acks[1].serial >= 0


def test_large_content_is_deduplicated_across_records(vault: Vault) -> None:
    big = os.urandom(5 << 20)
    append(vault, big, source_id="a")
    before = vault.store.list("packs/")
    packs_before = len(list(before))
    edited = big[: 2 << 20] + b"INSERTED" + big[2 << 20 :]
    r = append(vault, edited, source_id="b")
    assert read(vault, r.record) == edited
    new = (
        vault.catalog.db.execute(
            "SELECT sum(plain_len) FROM chunks c JOIN packs p ON p.name = c.pack"
            " WHERE p.put_serial > ?",
            (r.serial - 3,),
        ).fetchone()[0]
        or 0
    )
    assert new < 3 << 20, "content-defined chunking should reuse most of the chunks"
    assert len(list(vault.store.list("packs/"))) == packs_before + 1


def test_default_retention_is_six_years(vault: Vault, vaults: VaultFactory) -> None:
    """FINRA 4511(b): six years when no other period applies."""
    r = append(vault, b"m")
    assert r.rule == "default"
    assert r.retain_until == add_period(vaults.clock.now(), Period(years=6))


def test_longest_matching_rule_wins(vaults: VaultFactory) -> None:
    vaults.policy = Policy(
        (Rule("chat-3y", Period(3), "chat"), Rule("desk-7y", Period(7), "*", "desk-*"))
    )
    with vaults.create() as v:
        a = append(v, b"a", record_class="chat", source="desk-1")
        b = append(v, b"b", record_class="chat", source="other")
        c = append(v, b"c", record_class="file", source="other")
    assert (a.rule, b.rule, c.rule) == ("desk-7y", "chat-3y", "default")


def test_reused_chunk_extends_pack_retention(vaults: VaultFactory) -> None:
    """A pack lives as long as the longest-lived record that references it."""
    vaults.policy = Policy((Rule("short", Period(1), "short"), Rule("long", Period(10), "long")))
    with vaults.create() as v:
        a = append(v, b"shared content " * 400, record_class="short", source_id="1")
        b = append(v, b"shared content " * 400, record_class="long", source_id="2")
        pack = v.catalog.packs_of(a.record)[0]
        assert pack in v.catalog.packs_of(b.record)
        assert v.store.head(pack).retain_until >= b.retain_until
        assert EntryType.OBJECT_EXTEND in types(v)
        assert verify(v).ok


def test_every_action_is_audited(vault: Vault) -> None:
    """F3-iii: appends, reads, searches, holds, verify each leave a ledger entry."""
    r = append(vault, b"hello audit")
    read(vault, r.record)
    vault.audit("search", results=1)
    hid = lifecycle.place_hold(vault, records=[r.record], reason="matter 1")
    lifecycle.release_hold(vault, hid, "closed")
    verify(vault)
    got = types(vault)
    for t in (
        EntryType.VAULT_INIT,
        EntryType.RECORD_APPEND,
        EntryType.ACCESS,
        EntryType.HOLD_PLACE,
        EntryType.HOLD_RELEASE,
        EntryType.VERIFY,
    ):
        assert t in got
    actors = {e.actor for _, e in vault.entries()}
    assert actors == {"user:test"}


# --- write-once ---------------------------------------------------------------------------------


def test_store_refuses_overwrite_shorten_and_early_delete(vault: Vault) -> None:
    """F2-i-B-1 / F2-i-B-3: no overwrite, no shortening, no delete before expiry."""
    r = append(vault, b"keep me")
    pack = vault.catalog.packs_of(r.record)[0]
    original = vault.store.get(pack)
    with pytest.raises(ObjectExists):
        vault.store.put(pack, b"evil", retain_until=r.retain_until)
    with pytest.raises(Refused):
        vault.store.extend_retention(pack, r.retain_until - timedelta(days=1))
    with pytest.raises(Refused):
        vault.store.delete(pack)
    assert vault.store.get(pack) == original
    assert verify(vault).ok


def test_shortening_record_retention_is_refused_and_recorded(vault: Vault) -> None:
    r = append(vault, b"r")
    with pytest.raises(Refused, match="never shortened"):
        lifecycle.extend_record(vault, r.record, r.retain_until - timedelta(days=400))
    denied = [e for _, e in vault.entries() if e.type is EntryType.DENIED]
    assert denied and denied[-1]["target"] == r.record
    later = r.retain_until + timedelta(days=30)
    assert lifecycle.extend_record(vault, r.record, later) == later
    for pack in vault.catalog.packs_of(r.record):
        assert vault.store.head(pack).retain_until >= later
    assert verify(vault).ok


def test_compliance_mode_cannot_be_turned_off(vault: Vault) -> None:
    with pytest.raises(Refused, match="cannot be turned off"):
        vault.set_mode(RetentionMode.GOVERNANCE)
    assert vault.mode is RetentionMode.COMPLIANCE
    assert types(vault)[-1] is EntryType.DENIED


def test_governance_vault_can_be_raised_to_compliance(vaults: VaultFactory) -> None:
    with vaults.create(RetentionMode.GOVERNANCE) as v:
        assert v.mode is RetentionMode.GOVERNANCE
        assert verify(v).stats["mode"] == "GOVERNANCE"
        before = append(v, b"stored under governance")
        old_pack = v.catalog.packs_of(before.record)[0]
        assert v.store.head(old_pack).mode is RetentionMode.GOVERNANCE
        v.set_mode(RetentionMode.COMPLIANCE)
        assert str(v.mode) == "COMPLIANCE"
        after = append(v, b"stored under compliance", source_id="2")
        pack = v.catalog.packs_of(after.record)[0]
        assert v.store.head(pack).mode is RetentionMode.COMPLIANCE
        report = verify(v)
        assert report.ok  # older GOVERNANCE objects are reported, not failed
        notes = " ".join(n for c in report.checks for n in c.notes)
        assert "GOVERNANCE" in notes
        with pytest.raises(Refused):
            v.set_mode(RetentionMode.GOVERNANCE)


# --- holds and disposal -------------------------------------------------------------------------


def _jump(v: Vault, vaults: VaultFactory, delta: timedelta) -> None:
    vaults.clock.advance(delta)
    if delta > timedelta(days=7):
        with pytest.raises(ClockPaused):
            lifecycle.dispose(v, dry_run=True)
        v.confirm_clock("test: time passes")


def test_dispose_only_expired_and_unheld(vaults: VaultFactory) -> None:
    vaults.policy = Policy((Rule("short", Period(1), "short"),))
    with vaults.create() as v:
        a = append(v, b"expires soon", record_class="short", source_id="a")
        b = append(v, b"held record", record_class="short", source_id="b")
        c = append(v, b"kept 6 years", record_class="file", source_id="c")
        hid = lifecycle.place_hold(v, records=[b.record], reason="subpoena 7")
        held_pack = v.catalog.packs_of(b.record)
        assert all(v.store.head(p).legal_hold for p in held_pack)
        assert lifecycle.dispose(v).records == []  # nothing expired yet
        _jump(v, vaults, timedelta(days=366 + 31))
        plan = lifecycle.dispose(v)
        assert [r["id"] for r in plan.records] == [a.record]
        assert plan.held == [b.record]
        with pytest.raises(NotFound, match="disposed"):
            read(v, a.record)
        assert read(v, b.record) == b"held record"
        assert read(v, c.record) == b"kept 6 years"
        disp = [e for _, e in v.entries() if e.type is EntryType.RECORD_DISPOSE]
        assert [e["record"] for e in disp] == [a.record]
        assert verify(v).ok
        lifecycle.release_hold(v, hid, "matter closed")
        plan2 = lifecycle.dispose(v)
        assert [r["id"] for r in plan2.records] == [b.record]
        assert verify(v).ok
        assert read(v, c.record) == b"kept 6 years"


def test_query_hold_catches_later_records(vault: Vault) -> None:
    """A query hold also holds records that arrive after it was placed."""
    before = append(vault, b"project falcon kickoff", source_id="1")
    hid = lifecycle.place_hold(vault, query=Query("falcon"), reason="matter falcon")
    after = append(vault, b"falcon pricing update", source_id="2")
    other = append(vault, b"lunch menu", source_id="3")
    assert vault.catalog.held(before.record) == [hid]
    assert vault.catalog.held(after.record) == [hid]
    assert vault.catalog.held(other.record) == []
    for p in vault.catalog.packs_of(after.record):
        assert vault.store.head(p).legal_hold
    assert verify(vault).ok


def test_hold_needs_reason_and_existing_records(vault: Vault) -> None:
    from strongroom.errors import BadInput

    with pytest.raises(BadInput):
        lifecycle.place_hold(vault, records=["nope"], reason=" ")
    with pytest.raises(NotFound):
        lifecycle.place_hold(vault, records=["nope"], reason="x")


# --- compliance clock ---------------------------------------------------------------------------


def test_clock_set_back_does_not_shorten_anything(vaults: VaultFactory) -> None:
    """F2-i-B-6: the compliance clock never goes backwards."""
    with vaults.create() as v:
        first = append(v, b"one", source_id="1")
        vaults.clock.advance(timedelta(days=-400))
        second = append(v, b"two", source_id="2")
        assert second.retain_until >= first.retain_until
        times = [e.time for _, e in v.entries()]
        assert times == sorted(times)
        clock_events = [e["event"] for _, e in v.entries() if e.type is EntryType.CLOCK]
        assert "went-back" in clock_events
    # a restart does not forget the high-water mark
    with vaults.open() as v:
        third = append(v, b"three", source_id="3")
        assert third.retain_until >= first.retain_until


def test_clock_high_water_survives_losing_the_state_file(vaults: VaultFactory) -> None:
    with vaults.create() as v:
        r = append(v, b"x")
    (vaults.path / "state" / "clock.json").unlink()
    vaults.clock.advance(timedelta(days=-1000))
    with vaults.open() as v:
        r2 = append(v, b"y", source_id="y")
        assert r2.retain_until >= r.retain_until


def test_forward_jump_pauses_disposal_until_confirmed(vaults: VaultFactory) -> None:
    with vaults.create() as v:
        append(v, b"x")
        vaults.clock.advance(timedelta(days=3650))
        with pytest.raises(ClockPaused):
            lifecycle.dispose(v)
        # nothing was deleted meanwhile:
        assert v.catalog.counts()["disposed"] == 0
        events = [e["event"] for _, e in v.entries() if e.type is EntryType.CLOCK]
        assert "forward-jump" in events
    with vaults.open() as v:  # the pause persists across restarts
        with pytest.raises(ClockPaused):
            lifecycle.dispose(v, dry_run=True)
        v.confirm_clock("NTP verified after maintenance")
        plan = lifecycle.dispose(v)
        assert len(plan.records) == 1
        assert verify(v).ok


def test_corrected_clock_jump_leaves_no_future_floor(vaults: VaultFactory) -> None:
    """Regression (found in review): a jump later corrected must not become the ledger's
    time floor on reopen, or confirming it would let disposal run years early."""
    with vaults.create() as v:
        r = append(v, b"retained six years")
        real = vaults.clock.now()
        vaults.clock.advance(timedelta(days=3650))
        v.audit("search", results=0)  # an entry written while the jump is unconfirmed
        assert all(e.time <= real + timedelta(seconds=1) for _, e in v.entries())
    vaults.clock.set(real + timedelta(hours=1))  # someone fixes the clock
    with vaults.open() as v:
        v.confirm_clock("clock was wrong; fixed")
        plan = lifecycle.dispose(v, dry_run=True)
        assert plan.records == []
        assert v.record(r.record)["disposed_serial"] is None


def test_append_during_pause_uses_the_later_time(vaults: VaultFactory) -> None:
    """Retention starts from the later of system time and high-water: never short."""
    with vaults.create() as v:
        vaults.clock.advance(timedelta(days=30))
        r = append(v, b"x")
        assert r.retain_until == add_period(vaults.clock.now(), Period(6))


def test_key_rotation_keeps_old_records_readable(vault: Vault) -> None:
    a = append(vault, b"before rotation", source_id="a")
    assert vault.rotate_key() == "dk-0002"
    b = append(vault, b"after rotation", source_id="b")
    assert read(vault, a.record) == b"before rotation"
    assert read(vault, b.record) == b"after rotation"
    from strongroom.crypto import parse_header

    pack_b = vault.catalog.packs_of(b.record)[0]
    raw = vault.store.get(pack_b)
    assert parse_header(raw[21:]).key_id == "dk-0002"
    assert verify(vault).ok


def test_reopen_and_time_parsing(vaults: VaultFactory) -> None:
    with vaults.create() as v:
        r = append(v, b"persist")
    with vaults.open() as v:
        assert read(v, r.record) == b"persist"
        rec = v.record(r.record)
        assert parse_time(rec["retain_until"]) == r.retain_until
        assert rec["received"].startswith(str(datetime(2026, 3, 1, tzinfo=UTC).date()))


def test_keys_config_and_ledger_outlive_the_records(vaults: VaultFactory) -> None:
    """F3-iii: the audit trail (ledger) and the keys needed to read records are retained
    at least as long as the records: extended in blocks as time passes and as records
    are retained longer."""
    with vaults.create() as v:
        r = append(v, b"x")
        far = r.retain_until + timedelta(days=365 * 14)
        lifecycle.extend_record(v, r.record, far)
        vid = v.config.vault_id
        for name in (
            "vault.json",
            f"keys/{vid}/signing",
            f"keys/{vid}/data/dk-0001",
            "tile/entries/000.p/1",
        ):
            assert v.store.head(name).retain_until >= far, name
        # entries written after the extension are kept as long, too
        newest = sorted(v.store.list("checkpoints/"))[-1]
        assert v.store.head(newest).retain_until >= far
        assert EntryType.LEDGER_EXTEND in types(v)
        assert verify(v).ok


def test_infrastructure_retention_rolls_forward_with_time(vaults: VaultFactory) -> None:
    with vaults.create() as v:
        append(v, b"x")
        created_until = v.store.head("vault.json").retain_until
        _jump(v, vaults, timedelta(days=365 * 4))
        append(v, b"y", source_id="y")
        assert v.store.head("vault.json").retain_until > created_until
        assert v.store.head(f"keys/{v.config.vault_id}/signing").retain_until >= add_period(
            vaults.clock.now(), Period(6)
        )


def test_retain_refuses_a_disposed_record(vaults: VaultFactory) -> None:
    vaults.policy = Policy((Rule("short", Period(1), "short"),))
    with vaults.create() as v:
        r = append(v, b"short-lived", record_class="short")
        _jump(v, vaults, timedelta(days=400))
        lifecycle.dispose(v)
        with pytest.raises(NotFound, match="disposed"):
            lifecycle.extend_record(v, r.record, r.retain_until + timedelta(days=3650))


def test_verify_checks_the_retention_of_keys_config_and_ledger(vaults: VaultFactory) -> None:
    import json

    with vaults.create() as v:
        append(v, b"x")
    lock = vaults.path / "store" / "locks" / "vault.json.json"
    state = json.loads(lock.read_text())
    state["retain_until"] = "2026-03-02T00:00:00.000000Z"
    lock.chmod(0o644)
    lock.write_text(json.dumps(state))
    with vaults.open() as v:
        report = verify(v, record=False)
    failed = {c.name: c for c in report.checks if not c.ok}
    assert "vault.json" in failed["retention"].objects
