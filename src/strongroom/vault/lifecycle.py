"""Legal holds and disposal (REQUIREMENTS.md F2-i-B-4, F2-i-B-6; FINRA 4511).

A hold is placed and released by ledger entries that carry the actor; its scope is
a list of record ids or a catalog query (a query hold also catches records appended
later). Every pack holding content of a held record carries the store's legal-hold
flag, so the store itself refuses to delete it.

Disposal deletes only content whose retention has ended by the *trusted* compliance
time and that no active hold covers. It writes the disposition entries first (the
intent, with what will be deleted), then deletes packs that no live record needs,
each deletion confirmed by its own entry. A crash in between leaves packs that the
next ``dispose`` finishes; the ledger keeps the proof that each record existed and
was lawfully destroyed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strongroom.catalog import Query
from strongroom.core.entries import EntryType
from strongroom.core.ids import new_id
from strongroom.core.retention import format_time, parse_time
from strongroom.errors import BadInput, NotFound, Refused
from strongroom.vault.vault import Vault

MAX_HOLD_RECORDS = 1000  # record ids in one hold entry (entries are at most 64 KiB)


def _set_pack_hold(vault: Vault, pack: str, on: bool) -> None:
    info = vault.store.head(pack)
    if info.legal_hold != on:
        vault.store.set_legal_hold(pack, on)
    row = vault.catalog.pack(pack)
    if row is None or bool(row["legal_hold"]) != on:
        vault.append_entry(EntryType.OBJECT_HOLD, {"object": pack, "on": on})


def hold_packs_of(vault: Vault, record_ids: Iterable[str]) -> None:
    """Set the store's legal-hold flag on every pack the records depend on."""
    packs = sorted({p for rid in record_ids for p in vault.catalog.packs_of(rid)})
    for pack in packs:
        _set_pack_hold(vault, pack, True)


def place_hold(
    vault: Vault, *, records: list[str] | None = None, query: Query | None = None, reason: str
) -> str:
    if not reason.strip():
        raise BadInput("a legal hold needs a reason", "Pass --reason, e.g. the matter or subpoena.")
    if (records is None) == (query is None):
        raise BadInput("a hold takes either record ids or a query, not both or neither")
    hold_id = "H" + new_id(vault.now())[1:]
    if records is not None:
        if len(records) > MAX_HOLD_RECORDS:
            raise BadInput(
                f"a hold names at most {MAX_HOLD_RECORDS} records; {len(records)} were given",
                "Use a query hold, or place several holds.",
            )
        missing = [r for r in records if vault.catalog.record(r) is None]
        if missing:
            raise NotFound(f"no such records: {', '.join(missing[:10])}")
        fields: dict[str, Any] = {"hold": hold_id, "scope": "records", "records": sorted(records)}
        details: dict[str, Any] = {"reason": reason}
    else:
        assert query is not None
        vault.catalog.search(query, limit=1)  # validate the query before recording it
        fields = {"hold": hold_id, "scope": "query"}
        details = {"reason": reason, "query": query.to_json()}
    fields["sealed"] = vault.seal_details(details, hold_id.encode())
    vault.append_entry(EntryType.HOLD_PLACE, fields)
    vault.commit()
    vault.indexer.newly_held.clear()
    held = [
        str(r[0])
        for r in vault.catalog.db.execute(
            "SELECT record_id FROM hold_records WHERE hold_id = ? ORDER BY record_id", (hold_id,)
        )
    ]
    hold_packs_of(vault, held)
    vault.commit()
    return hold_id


def release_hold(vault: Vault, hold_id: str, reason: str) -> list[str]:
    """Release a hold; clears pack flags no other active hold needs. Returns those packs."""
    if not reason.strip():
        raise BadInput("releasing a legal hold needs a reason", "Pass --reason.")
    active = {h["id"] for h in vault.catalog.holds()}
    if hold_id not in active:
        raise NotFound(f"no active hold {hold_id!r}")
    recs = [
        str(r[0])
        for r in vault.catalog.db.execute(
            "SELECT record_id FROM hold_records WHERE hold_id = ?", (hold_id,)
        )
    ]
    vault.append_entry(
        EntryType.HOLD_RELEASE,
        {"hold": hold_id, "sealed": vault.seal_details({"reason": reason}, hold_id.encode())},
    )
    vault.commit()
    cleared = []
    for pack in sorted({p for r in recs for p in vault.catalog.packs_of(r)}):
        if not vault.catalog.pack_needs_hold(pack):
            _set_pack_hold(vault, pack, False)
            cleared.append(pack)
    vault.commit()
    return cleared


def extend_record(vault: Vault, record_id: str, until: datetime) -> datetime:
    """Extend a record's retain-until (and its packs'). Shortening is refused and recorded."""
    rec = vault.catalog.record(record_id)
    if rec is None:
        raise NotFound(f"no record {record_id!r} in this vault")
    if rec["disposed_serial"] is not None:
        raise NotFound(
            f"record {record_id} was disposed of at serial {rec['disposed_serial']}",
            "Its content no longer exists; there is nothing to retain.",
        )
    current = parse_time(rec["retain_until"])
    if until < current:
        vault.deny(
            "record.extend",
            record_id,
            f"requested {format_time(until)} is before {format_time(current)}",
        )
        raise Refused(
            f"record {record_id} is retained until {format_time(current)}; retention can be "
            f"extended, never shortened (requested {format_time(until)})",
            "Nothing was changed; the attempt was recorded in the ledger.",
        )
    if until == current:
        return current
    for pack in vault.catalog.packs_of(record_id):
        info = vault.store.head(pack)
        if info.retain_until < until:
            vault.store.extend_retention(pack, until)
            vault.append_entry(
                EntryType.OBJECT_EXTEND, {"object": pack, "retain_until": format_time(until)}
            )
    vault.append_entry(
        EntryType.RECORD_EXTEND, {"record": record_id, "retain_until": format_time(until)}
    )
    vault.commit()
    return until


@dataclass(slots=True)
class DisposalPlan:
    now: str
    records: list[dict[str, Any]] = field(default_factory=list)  # to dispose
    held: list[str] = field(default_factory=list)  # expired but held
    packs: list[str] = field(default_factory=list)  # to delete
    kept: list[str] = field(default_factory=list)  # still needed by live records

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "records": [r["id"] for r in self.records],
            "held": self.held,
            "delete_objects": self.packs,
            "kept_objects": self.kept,
        }


def plan_disposal(vault: Vault) -> DisposalPlan:
    now = vault.trusted_now()
    plan = DisposalPlan(format_time(now))
    going: set[str] = set()
    for rec in vault.catalog.expired_records(plan.now):
        if vault.catalog.held(rec["id"]):
            plan.held.append(rec["id"])
        else:
            plan.records.append(rec)
            going.add(rec["id"])
    candidates = {p for r in plan.records for p in vault.catalog.packs_of(r["id"])}
    # packs left behind by an earlier, interrupted disposal: no live record uses them
    for live_pack in vault.catalog.live_packs():
        if not vault.catalog.records_in_pack(live_pack["name"]):
            candidates.add(live_pack["name"])
    for pack in sorted(candidates):
        row = vault.catalog.pack(pack)
        if row is None or row["deleted_serial"] is not None:
            continue
        # record_packs holds live records only (a disposition removes its rows)
        live = [u for u in vault.catalog.records_in_pack(pack) if u not in going]
        if live or row["legal_hold"] or parse_time(row["retain_until"]) > now:
            plan.kept.append(pack)
        else:
            plan.packs.append(pack)
    return plan


def dispose(vault: Vault, dry_run: bool = False) -> DisposalPlan:
    plan = plan_disposal(vault)
    if dry_run:
        vault.audit("dispose-dry-run", records=len(plan.records), objects=len(plan.packs))
        return plan
    deleting = set(plan.packs)
    for rec in plan.records:
        packs = vault.catalog.packs_of(rec["id"])
        vault.append_entry(
            EntryType.RECORD_DISPOSE,
            {
                "record": rec["id"],
                "sha256": rec["sha256"],
                "retain_until": rec["retain_until"],
                "delete_objects": sorted(p for p in packs if p in deleting),
                "kept_objects": sorted(p for p in packs if p not in deleting),
            },
        )
    vault.commit()
    for pack in plan.packs:
        try:
            vault.store.delete(pack)
        except Refused as e:
            vault.deny("object.delete", pack, e.message)
            raise
        vault.append_entry(EntryType.OBJECT_DELETE, {"object": pack})
        vault.commit()
    return plan
