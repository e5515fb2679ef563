"""Tamper evidence: changes made behind the vault's back make ``verify`` fail and name
what is affected (REQUIREMENTS.md F2-ii, F2-i-A-4, F2-i-A-5, F2-i-B-7).

The local directory store enforces retention in software only, so an attacker with
file-system access *can* change bytes; what we prove here is that every such change is
detected and attributed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strongroom.vault.ingest import Appender, AppendResult, Item
from strongroom.vault.vault import Vault
from strongroom.vault.verify import Report, verify
from tests.conftest import VaultFactory


def _fill(v: Vault, n: int, tag: str) -> list[AppendResult]:
    acks: list[AppendResult] = []
    with Appender(v, on_ack=acks.append, batch_records=7) as ap:
        for i in range(n):
            ap.add(
                Item.from_bytes(
                    f"{tag} message {i} ".encode() * 20, record_class="chat", source_id=f"{tag}{i}"
                )
            )
    return acks


def _objects(vaults: VaultFactory) -> Path:
    return vaults.path / "store" / "objects"


def _rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def _failed(report: Report) -> dict[str, object]:
    return {c.name: c for c in report.checks if not c.ok}


@pytest.fixture
def filled(vaults: VaultFactory) -> tuple[VaultFactory, list[AppendResult]]:
    with vaults.create() as v:
        acks = _fill(v, 300, "a")  # > 256 entries: full and partial tiles exist
        assert verify(v).ok
    return vaults, acks


def test_flipped_byte_in_pack_names_pack_and_records(
    filled: tuple[VaultFactory, list[AppendResult]],
) -> None:
    vaults, acks = filled
    with vaults.open() as v:
        pack = v.catalog.packs_of(acks[10].record)[0]
    f = _objects(vaults) / pack
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    _rewrite(f, bytes(data))
    with vaults.open() as v:
        report = verify(v)
    failed = _failed(report)
    assert not report.ok and "objects" in failed
    objects = failed["objects"]
    assert pack in objects.objects  # type: ignore[attr-defined]
    assert acks[10].record in objects.records  # type: ignore[attr-defined]


def test_deleted_tile_is_named(filled: tuple[VaultFactory, list[AppendResult]]) -> None:
    vaults, _ = filled
    tile = _objects(vaults) / "tile" / "0" / "000"
    assert tile.exists()
    tile.unlink()
    with vaults.open() as v:
        report = verify(v)
    failed = _failed(report)
    assert "ledger" in failed
    assert "tile/0/000" in failed["ledger"].objects  # type: ignore[attr-defined]


def test_altered_tile_is_named(filled: tuple[VaultFactory, list[AppendResult]]) -> None:
    vaults, _ = filled
    tile = _objects(vaults) / "tile" / "0" / "000"
    data = bytearray(tile.read_bytes())
    data[5] ^= 0xFF
    _rewrite(tile, bytes(data))
    with vaults.open() as v:
        report = verify(v)
    assert "tile/0/000" in _failed(report)["ledger"].objects  # type: ignore[attr-defined]


def test_truncated_checkpoint_is_named(filled: tuple[VaultFactory, list[AppendResult]]) -> None:
    vaults, _ = filled
    cps = sorted((_objects(vaults) / "checkpoints").iterdir())
    victim = cps[len(cps) // 2]
    _rewrite(victim, victim.read_bytes()[:40])
    with vaults.open() as v:
        report = verify(v)
    failed = _failed(report)
    assert f"checkpoints/{victim.name}" in failed["checkpoints"].objects  # type: ignore[attr-defined]


def test_altered_entry_breaks_every_later_checkpoint(
    filled: tuple[VaultFactory, list[AppendResult]],
) -> None:
    """Rewriting an entry bundle consistently (even with its tile) cannot match signed roots."""
    vaults, _ = filled
    bundle = _objects(vaults) / "tile" / "entries" / "000"
    data = bundle.read_bytes()
    i = data.index(b'"class":"chat"')
    _rewrite(bundle, data[:i] + b'"class":"chaT"' + data[i + 14 :])
    with vaults.open() as v:
        report = verify(v)
    failed = _failed(report)
    assert "checkpoints" in failed or "ledger" in failed
    assert not report.ok


def test_restoring_an_older_ledger_is_detected(vaults: VaultFactory, tmp_path: Path) -> None:
    """Rollback: an older copy of the ledger put back is caught by the catalog and by the
    checkpoint this host last saw; the records lost from the ledger are named."""
    with vaults.create() as v:
        _fill(v, 20, "old")
    snap = tmp_path / "snapshot"
    for sub in ("tile", "checkpoints"):
        shutil.copytree(_objects(vaults) / sub, snap / sub)
    with vaults.open() as v:
        newer = _fill(v, 300, "new")
    for sub in ("tile", "checkpoints"):
        target = _objects(vaults) / sub
        for p in target.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(target)
        shutil.copytree(snap / sub, target)
    from strongroom.errors import CorruptVault

    def check_refuses_and_reports() -> None:
        with vaults.open() as v:
            with pytest.raises(CorruptVault, match="damaged ledger"):
                v.audit("search", results=0)  # every write is refused ...
            report = verify(v)  # ... but verify runs and names the rollback
        failed = _failed(report)
        assert "trusted" in failed
        assert "rollback" in " ".join(failed["trusted"].problems)  # type: ignore[attr-defined]
        assert newer[0].record in failed["trusted"].records  # type: ignore[attr-defined]

    check_refuses_and_reports()
    # deleting the (derived) catalog does not launder the rollback: the last checkpoint this
    # host saw still catches it, and it is not overwritten by later commits
    for suffix in ("", "-wal", "-shm"):
        Path(str(vaults.path / "state" / "catalog.sqlite") + suffix).unlink(missing_ok=True)
    with vaults.open() as v:
        with pytest.raises(CorruptVault, match="rollback"):
            v.audit("search", results=0)
        assert not verify(v).ok


def test_trusted_checkpoint_from_user_detects_whole_vault_rollback(
    vaults: VaultFactory, tmp_path: Path
) -> None:
    """The whole vault directory (store *and* local state) restored from an older copy is
    consistent with itself; only a checkpoint kept outside it catches the rollback."""
    with vaults.create() as v:
        _fill(v, 5, "x")
    old_copy = tmp_path / "old-copy"
    shutil.copytree(vaults.path, old_copy)
    with vaults.open() as v:
        _fill(v, 5, "y")
        kept_by_auditor = v.ledger.checkpoint_note()
        assert verify(v, trusted_notes=[kept_by_auditor]).ok
    for p in vaults.path.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(vaults.path)
    shutil.copytree(old_copy, vaults.path)
    with vaults.open() as v:
        assert verify(v, record=False).ok  # self-consistent...
        report = verify(v, trusted_notes=[kept_by_auditor], record=False)
    failed = _failed(report)
    assert not report.ok
    assert "rollback" in " ".join(failed["trusted"].problems)  # type: ignore[attr-defined]


def test_deleted_pack_names_records(filled: tuple[VaultFactory, list[AppendResult]]) -> None:
    vaults, acks = filled
    with vaults.open() as v:
        pack = v.catalog.packs_of(acks[0].record)[0]
    (_objects(vaults) / pack).unlink()
    with vaults.open() as v:
        report = verify(v)
    failed = _failed(report)
    assert pack in failed["objects"].objects  # type: ignore[attr-defined]
    assert acks[0].record in failed["objects"].records  # type: ignore[attr-defined]


def test_shortened_lock_file_is_caught_by_retention_check(
    filled: tuple[VaultFactory, list[AppendResult]],
) -> None:
    """F2-i-B-7: retention state edited on the store is reconciled against the ledger."""
    import json

    vaults, acks = filled
    with vaults.open() as v:
        pack = v.catalog.packs_of(acks[0].record)[0]
    lock = vaults.path / "store" / "locks" / f"{pack}.json"
    state = json.loads(lock.read_text())
    state["retain_until"] = "2026-03-02T00:00:00.000000Z"
    _rewrite(lock, json.dumps(state).encode())
    with vaults.open() as v:
        report = verify(v)
    failed = _failed(report)
    assert pack in failed["retention"].objects  # type: ignore[attr-defined]


def test_verify_reports_a_damaged_ledger_even_with_the_clock_set_back(
    filled: tuple[VaultFactory, list[AppendResult]],
) -> None:
    """Regression (found in review): verify's clock reading must not try to write."""
    from datetime import timedelta

    vaults, _ = filled
    (_objects(vaults) / "tile" / "entries" / "000").unlink()
    vaults.clock.advance(timedelta(days=-30))
    with vaults.open() as v:
        report = verify(v)
    assert not report.ok and "ledger" in _failed(report)


def test_absurdly_nested_entry_is_reported_not_crashed(vaults: VaultFactory) -> None:
    from strongroom.core.entries import decode_entry
    from strongroom.errors import BadInput

    with pytest.raises(BadInput):
        decode_entry(b"[" * 60_000)
