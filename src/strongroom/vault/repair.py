"""``strongroom repair``: restore copies that one side of a replicated vault has lost
or damaged, from the healthy side (REQUIREMENTS.md F2-v).

A restore is always a **create**: a missing copy is written anew; a damaged local copy
is first moved to the store's ``quarantine/`` (``LocalStore.quarantine``, which moves
only bytes that do not hash as they should, and keeps them) and then written anew.
Nothing is overwritten or deleted. Which side is healthy is decided by the hash the
ledger's ``object.put`` entry recorded (packs); an object missing on one side is taken
from the other. Copies that differ where the ledger holds no hash (ledger objects,
keys, ``vault.json``) are reported and left to the operator — ``verify`` of each side
shows which is right. Every restore is recorded in the ledger (``repair`` entry, with
the actor and the object's SHA-256).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from strongroom.core.entries import EntryType
from strongroom.errors import BadInput
from strongroom.store.base import Store
from strongroom.store.replicated import ReplicatedStore
from strongroom.vault.vault import Vault
from strongroom.vault.verify import Difference, pack_hashes, replica_differences


@dataclass(slots=True)
class RepairReport:
    restored: list[Difference] = field(default_factory=list)
    left: list[tuple[Difference, str]] = field(default_factory=list)  # and why

    @property
    def ok(self) -> bool:
        return not self.left


def repair(vault: Vault) -> RepairReport:
    store = vault.store
    if not isinstance(store, ReplicatedStore):
        raise BadInput(
            "this vault has no replica to repair from",
            "Pass --replica (or set STRONGROOM_REPLICA) with the replica's store URL.",
        )
    store.flush()
    sides: dict[str, Store] = {"primary": store.primary, "replica": store.replica}
    report = RepairReport()
    for d in replica_differences(vault, pack_hashes(vault)):
        if d.healthy is None:
            report.left.append((d, "the two copies differ and the ledger holds no hash"))
            continue
        src, dst = sides[d.healthy], sides[d.side]
        data = src.get(d.name)
        sha = hashlib.sha256(data).hexdigest()
        if d.sha256 is not None and sha != d.sha256:
            report.left.append((d, f"the {d.healthy}'s copy does not match the ledger either"))
            continue
        info = src.head(d.name)
        if d.problem == "damaged":
            quarantine = getattr(dst, "quarantine", None)
            if quarantine is None:
                report.left.append((d, f"{dst.url} cannot set a damaged copy aside"))
                continue
            quarantine(d.name, sha)
        dst.put(
            d.name, data, retain_until=info.retain_until, mode=info.mode, legal_hold=info.legal_hold
        )
        vault.append_entry(
            EntryType.REPAIR,
            {"object": d.name, "restored_on": d.side, "problem": d.problem, "sha256": sha},
        )
        report.restored.append(d)
    vault.commit()
    return report
