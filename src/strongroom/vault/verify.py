"""``verify``: prove the vault is complete, unaltered and correctly retained.

Checks (each reported with the records and objects it affects):

1. **ledger** — every entry bundle is present and decodes (no serial is missing); every
   entry is canonical; every stored hash tile equals the tile recomputed from the
   entries; every tile the tree needs exists.
2. **checkpoints** — every stored checkpoint is signed by the vault key and its root
   equals the recomputed root at its size (the ledger is consistent with all of them).
3. **trusted** — the ledger extends the checkpoint the user trusts (``--trusted``) and
   the last one this host saw (rollback / fork detection).
4. **objects** — every pack named by the ledger exists, hashes to the SHA-256 the
   ledger recorded, and every blob in it authenticates (AES-GCM), decompresses and —
   for chunks — matches its keyed id; every record's manifest names only chunks that
   exist. ``--deep`` also re-hashes every record's content against its SHA-256.
5. **retention** — every live record's packs are retained on the store at least until
   the record's retain-until, in the vault's mode, and carry the legal-hold flag while
   the record is held.
6. **catalog** — the catalog's records and holds match what the ledger says.

REQUIREMENTS.md F2-ii (automatic verification of completeness and accuracy), F2-i-B-7
(retention attributes reconciled against the store), F2-i-A-4/5 (tamper-evident trail).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from strongroom.core import merkle
from strongroom.core.checkpoint import open_note
from strongroom.core.entries import Entry, EntryType, decode_entry
from strongroom.core.retention import format_time, parse_time
from strongroom.core.tiles import decode_bundle, entries_path, parse_tile_path, tiles_for_size
from strongroom.errors import CorruptVault, StrongroomError
from strongroom.store.base import RetentionMode, Store
from strongroom.store.local import LocalStore
from strongroom.store.replicated import ReplicatedStore
from strongroom.vault import snapshot as snap
from strongroom.vault.fileread import forked_workers
from strongroom.vault.ledger import CHECKPOINT_PREFIX, HASH, WIDTH
from strongroom.vault.packs import (
    BlobKind,
    index_location,
    iter_blobs,
    open_blob,
    parse_header,
    parse_index,
)
from strongroom.vault.snapshot import SNAPSHOT_CLASS, iter_lines, parse_node, show
from strongroom.vault.vault import Vault

Progress = Callable[[int], None]


@dataclass(slots=True)
class Check:
    name: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    records: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def fail(self, msg: str, records: Any = (), objects: Any = ()) -> None:
        self.ok = False
        if len(self.problems) < 200:
            self.problems.append(msg)
        self.records.update(records)
        self.objects.update(objects)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "problems": self.problems,
            "records": sorted(self.records),
            "objects": sorted(self.objects),
            "notes": self.notes,
        }


@dataclass(slots=True)
class Report:
    checks: list[Check]
    stats: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks], "stats": self.stats}


@dataclass(slots=True)
class _Record:
    id: str
    serial: int
    sha256: str
    size: int
    retain_until: str
    packs: list[str]
    manifest: dict[str, Any]
    disposed: int | None = None
    cls: str = ""


@dataclass(slots=True)
class _Ledger:
    """What the entries say, folded in serial order."""

    size: int = 0
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    records: dict[str, _Record] = field(default_factory=dict)
    holds: dict[str, Entry] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    mode: str = "COMPLIANCE"

    def fold(self, serial: int, e: Entry) -> None:
        t = e.type
        if t in (EntryType.VAULT_INIT, EntryType.MODE_SET):
            self.mode = e["mode"]
        elif t is EntryType.OBJECT_PUT:
            self.objects[e["object"]] = {
                "sha256": e["sha256"],
                "size": e["size"],
                "retain_until": e["retain_until"],
                "serial": serial,
                "mode": self.mode,  # the vault's mode when it was stored
            }
        elif t is EntryType.OBJECT_EXTEND and e["object"] in self.objects:
            o = self.objects[e["object"]]
            o["retain_until"] = max(o["retain_until"], e["retain_until"])
        elif t is EntryType.OBJECT_DELETE:
            self.deleted.add(e["object"])
        elif t is EntryType.RECORD_APPEND:
            self.records[e["record"]] = _Record(
                e["record"],
                serial,
                e["sha256"],
                e["size"],
                e["retain_until"],
                list(e["packs"]),
                dict(e["manifest"]),
                cls=e["class"],
            )
        elif t is EntryType.RECORD_EXTEND and e["record"] in self.records:
            r = self.records[e["record"]]
            r.retain_until = max(r.retain_until, e["retain_until"])
        elif t is EntryType.RECORD_DISPOSE and e["record"] in self.records:
            self.records[e["record"]].disposed = serial
        elif t is EntryType.HOLD_PLACE:
            self.holds[e["hold"]] = e
        elif t is EntryType.HOLD_RELEASE:
            self.released.add(e["hold"])


def verify(
    vault: Vault,
    *,
    trusted_notes: list[bytes] | None = None,
    deep: bool = False,
    progress: Progress | None = None,
    record: bool = True,
) -> Report:
    t0 = time.perf_counter()
    ledger_check, cp_check, trust_check = Check("ledger"), Check("checkpoints"), Check("trusted")
    obj_check, ret_check, cat_check = Check("objects"), Check("retention"), Check("catalog")
    ver_check, rep_check = Check("versions"), Check("replica")
    _check_versions(vault, ver_check)  # first: it also tells the store which versions to read
    folded, levels = _check_ledger(vault, ledger_check)
    _check_checkpoints(vault, levels, folded.size, cp_check)
    _check_trusted(vault, levels, folded.size, trusted_notes or [], trust_check)
    stored = _check_objects(vault, folded, obj_check, deep, progress)
    _check_retention(vault, folded, ret_check)
    _check_catalog(vault, folded, cat_check)
    _check_replica(vault, folded, rep_check)
    elapsed = time.perf_counter() - t0
    stats = {
        "entries": folded.size,
        "records": sum(1 for r in folded.records.values() if r.disposed is None),
        "disposed": sum(1 for r in folded.records.values() if r.disposed is not None),
        "objects": len(folded.objects) - len(folded.deleted),
        "object_bytes": stored,
        "seconds": round(elapsed, 3),
        "mb_per_s": round(stored / 1e6 / elapsed, 1) if elapsed > 0 else 0,
        "mode": folded.mode,
        "deep": deep,
    }
    checks = [
        ledger_check, cp_check, trust_check, obj_check, ret_check, ver_check, rep_check,
        cat_check,
    ]  # fmt: skip
    report = Report(checks, stats)
    if record and vault.ledger.damaged is None:
        try:
            vault.append_entry(
                EntryType.VERIFY,
                {
                    "ok": report.ok,
                    "size": folded.size,
                    "failed": sorted(c.name for c in report.checks if not c.ok),
                },
            )
            vault.commit()
        except StrongroomError:
            vault.discard_pending()
    return report


# --- versions -------------------------------------------------------------------------------


def _check_versions(vault: Vault, check: Check) -> None:
    """On a versioned store (S3 Object Lock): every object has exactly one version —
    the one we wrote — and no delete marker. Anything else was added from outside the
    vault; the locked original is still what is read (W-09)."""
    sides = vault.store.sides() if isinstance(vault.store, ReplicatedStore) else [vault.store]
    for store in sides:
        _versions_of(store, check)


def _versions_of(store: Store, check: Check) -> None:
    inventory = getattr(store, "inventory", None)
    if inventory is None:
        check.notes.append(f"{store.url} keeps one copy per object name (no versions to check)")
        return
    for name, inv in sorted(inventory().items()):
        if inv.delete_markers:
            check.fail(
                f"{name}: {inv.delete_markers} delete marker(s) were put on it from outside "
                "the vault (the locked original is intact and still read); remove the "
                "marker(s) by version id",
                objects=[name],
            )
        if len(inv.versions) > 1:
            check.fail(
                f"{name}: {len(inv.versions) - 1} extra version(s) were written beside the "
                "original from outside the vault (the original is still read)",
                objects=[name],
            )


# --- replica -------------------------------------------------------------------------------


def replica_differences(vault: Vault, folded_puts: dict[str, str]) -> list[Difference]:
    """Objects missing or different on one side of a replicated store. ``folded_puts``
    maps pack names to the SHA-256 their ``object.put`` entry recorded, which says
    which side is right; for other objects a copy that is missing is restored from
    the other side, and differing copies are left to the operator."""
    store = vault.store
    assert isinstance(store, ReplicatedStore)
    primary, replica = store.primary, store.replica
    p_names, r_names = set(primary.list()), set(replica.list())
    out: list[Difference] = []
    for name in sorted(p_names | r_names):
        if name not in r_names:
            out.append(Difference(name, "replica", "missing", "primary"))
            continue
        if name not in p_names:
            out.append(Difference(name, "primary", "missing", "replica"))
            continue
        a, b = _sha(primary, name), _sha(replica, name)
        if a == b:
            continue
        want = folded_puts.get(name)
        if want == a:
            out.append(Difference(name, "replica", "damaged", "primary", want))
        elif want == b:
            out.append(Difference(name, "primary", "damaged", "replica", want))
        else:
            out.append(Difference(name, "both", "different", None, want))
    return out


@dataclass(frozen=True, slots=True)
class Difference:
    name: str
    side: str  # where the copy is missing or damaged: "primary", "replica" or "both"
    problem: str  # "missing", "damaged" or "different" (which one is right is unknown)
    healthy: str | None  # the side to restore from
    sha256: str | None = None  # the right content's hash, when the ledger says

    def describe(self, vault: Vault) -> str:
        store = vault.store
        assert isinstance(store, ReplicatedStore)
        url = {"primary": store.primary.url, "replica": store.replica.url}.get(self.side, "")
        if self.problem == "different":
            return f"{self.name}: the primary and the replica hold different bytes"
        return f"{self.name} is {self.problem} on the {self.side} ({url})"


def _sha(store: Store, name: str) -> str:
    h = hashlib.sha256()
    size = store.head(name).size
    pos = 0
    while pos < size:
        data = store.get(name, pos, 8 << 20)
        if not data:
            break
        h.update(data)
        pos += len(data)
    return h.hexdigest()


def pack_hashes(vault: Vault) -> dict[str, str]:
    """Pack name -> SHA-256 from the ledger's ``object.put`` entries."""
    out: dict[str, str] = {}
    for _, e in vault.entries():
        if e.type is EntryType.OBJECT_PUT:
            out[str(e["object"])] = str(e["sha256"])
    return out


def _check_replica(vault: Vault, folded: _Ledger, check: Check) -> None:
    """With a replica: both sides hold the same objects, byte for byte (F2-v)."""
    if not isinstance(vault.store, ReplicatedStore):
        check.notes.append("no replica is configured")
        return
    puts = {n: str(m["sha256"]) for n, m in folded.objects.items() if "sha256" in m}
    for d in replica_differences(vault, puts):
        check.fail(d.describe(vault) + "; 'strongroom repair' restores it", objects=[d.name])


# --- ledger ---------------------------------------------------------------------------------


def _check_ledger(vault: Vault, check: Check) -> tuple[_Ledger, list[bytearray]]:
    """Read every bundle; recompute all tree levels; compare stored tiles and bundles."""
    store, ledger = vault.store, vault.ledger
    folded = _Ledger()
    level0 = bytearray()
    size = ledger.size
    if ledger.damaged is not None:
        check.fail(f"the vault refuses writes: {ledger.damaged}")
    serial = 0
    for b in range((size + WIDTH - 1) // WIDTH):
        width = min(WIDTH, size - b * WIDTH)
        name = entries_path(b, width)
        try:
            entries = decode_bundle(store.get(name))
            if len(entries) != width:
                raise ValueError(f"holds {len(entries)} entries, expected {width}")
        except (StrongroomError, ValueError) as exc:
            check.fail(
                f"entry bundle {name} (serials {b * WIDTH}..{b * WIDTH + width - 1}) is "
                f"missing or unreadable: {exc}",
                objects=[name],
            )
            return folded, [level0]
        for data in entries:
            try:
                entry = decode_entry(data)
            except StrongroomError as err:
                check.fail(f"entry {serial} is malformed: {err}", objects=[name])
                return folded, [level0]
            folded.fold(serial, entry)
            level0 += merkle.leaf_hash(data)
            serial += 1
    folded.size = serial
    levels = [level0]
    while len(levels[-1]) >= 2 * HASH:
        row, nxt = levels[-1], bytearray()
        for i in range(0, len(row) - HASH, 2 * HASH):
            nxt += merkle.node_hash(bytes(row[i : i + HASH]), bytes(row[i + HASH : i + 2 * HASH]))
        levels.append(nxt)
    # every stored tile and bundle must equal what the entries give
    sizes_needed = {size} | {s for s in _checkpoint_sizes(vault) if s <= size}
    needed: set[str] = set()
    for s in sizes_needed:
        needed.update(_tile_names(s))
    seen: set[str] = set()
    for name in store.list("tile/"):
        seen.add(name)
        try:
            level, index, width = parse_tile_path(name)
        except StrongroomError:
            check.fail(f"unexpected object {name} among the tiles", objects=[name])
            continue
        try:
            data = store.get(name)
        except StrongroomError as e:
            check.fail(f"tile {name} is unreadable: {e}", objects=[name])
            continue
        if level == "entries":
            start = index * WIDTH
            if start + width > size:
                check.fail(
                    f"entry bundle {name} goes beyond the ledger size {size}", objects=[name]
                )
            continue  # full and current partial bundles were read above; older partials:
        lvl = 8 * int(level)
        row = levels[lvl] if lvl < len(levels) else bytearray()
        expect = bytes(row[(index * WIDTH) * HASH : (index * WIDTH + width) * HASH])
        if data != expect:
            check.fail(f"hash tile {name} does not match the entries", objects=[name])
    for name in sorted(needed - seen):
        check.fail(f"tile {name} is missing", objects=[name])
    # older partial bundles must be prefixes of the entries
    for name in seen:
        if name.startswith("tile/entries/") and ".p/" in name:
            level, index, width = parse_tile_path(name)
            full = vault.ledger.bundle(index, min(WIDTH, size - index * WIDTH))
            if index * WIDTH + width <= size and decode_bundle(store.get(name)) != full[:width]:
                check.fail(f"entry bundle {name} differs from the ledger's entries", objects=[name])
    return folded, levels


def _tile_names(size: int) -> list[str]:
    """Every hash tile and entry bundle the tree of ``size`` leaves must have."""
    names = []
    for t in tiles_for_size(size):
        names.append(t.path())
        if t.level == 0:
            names.append(t.entries_path())
    return names


def _checkpoint_sizes(vault: Vault) -> list[int]:
    out = []
    for name in vault.store.list(CHECKPOINT_PREFIX):
        tail = name[len(CHECKPOINT_PREFIX) :]
        if tail.isdigit():
            out.append(int(tail))
    return out


def _root_at(levels: list[bytearray], size: int) -> bytes:
    src = _LevelSource(levels)
    return merkle.root(src, size)


class _LevelSource:
    def __init__(self, levels: list[bytearray]) -> None:
        self.levels = levels

    def node(self, level: int, index: int) -> bytes:
        row = self.levels[level]
        return bytes(row[index * HASH : (index + 1) * HASH])


def _check_checkpoints(vault: Vault, levels: list[bytearray], size: int, check: Check) -> None:
    verifier = [(vault.config.origin, vault.ledger.public_key)]
    count = 0
    for name in vault.store.list(CHECKPOINT_PREFIX):
        count += 1
        try:
            cp = open_note(vault.store.get(name), verifier)
        except StrongroomError as e:
            check.fail(f"checkpoint {name} is invalid: {e}", objects=[name])
            continue
        if name != f"{CHECKPOINT_PREFIX}{cp.size:020d}" or cp.origin != vault.config.origin:
            check.fail(
                f"checkpoint {name} names size {cp.size}, origin {cp.origin}", objects=[name]
            )
        elif cp.size > size:
            check.fail(
                f"checkpoint {name} covers {cp.size} entries; the ledger has {size}", objects=[name]
            )
        elif _root_at(levels, cp.size) != cp.root:
            check.fail(
                f"checkpoint {name}: the ledger is not consistent with it (root differs)",
                objects=[name],
            )
    if count == 0 and size:
        check.fail("no checkpoint is stored")
    check.notes.append(f"{count} checkpoints checked")


def _check_trusted(
    vault: Vault, levels: list[bytearray], size: int, notes: list[bytes], check: Check
) -> None:
    verifier = [(vault.config.origin, vault.ledger.public_key)]
    witness = vault.state / "checkpoint"
    sources = [("given", n) for n in notes]
    if witness.exists():
        sources.append((f"last seen on this host ({witness})", witness.read_bytes()))
    for label, note in sources:
        try:
            cp = open_note(note, verifier, origin=vault.config.origin)
        except StrongroomError as e:
            check.fail(f"trusted checkpoint ({label}) does not verify: {e}")
            continue
        if cp.size > size:
            check.fail(
                f"rollback: the ledger has {size} entries but the trusted checkpoint "
                f"({label}) has {cp.size}; entries {size}..{cp.size - 1} are gone"
            )
            rows = vault.catalog.db.execute(
                "SELECT id FROM records WHERE serial >= ? ORDER BY serial", (size,)
            )
            check.records.update(str(r[0]) for r in rows)
        elif _root_at(levels, cp.size) != cp.root:
            check.fail(
                f"fork: the ledger is not consistent with the trusted checkpoint ({label})"
                f" at size {cp.size}"
            )
        else:
            check.notes.append(f"consistent with trusted checkpoint ({label}) at size {cp.size}")


# --- objects --------------------------------------------------------------------------------


def _check_pack(
    vault: Vault, name: str, meta: dict[str, Any]
) -> tuple[list[str], int, dict[bytes, tuple[int, int]], dict[str, bytes]]:
    """Hash, authenticate and decode one pack. Returns problems, bytes, chunk map, manifests."""
    problems: list[str] = []
    try:
        data = vault.store.get(name)
    except StrongroomError as e:
        return [f"pack {name} is missing or unreadable: {e}"], 0, {}, {}
    if hashlib.sha256(data).hexdigest() != meta["sha256"] or len(data) != meta["size"]:
        problems.append(f"pack {name} does not hash to the SHA-256 the ledger recorded")
    chunks: dict[bytes, tuple[int, int]] = {}
    manifests: dict[str, bytes] = {}
    try:
        parse_header(data, name)
        off, length = index_location(data[-8:], len(data), name)
        rows = parse_index(data[off : off + length], vault.keyring, name)
        for row, sealed in iter_blobs(data, rows):
            plain = open_blob(vault.keyring, name, row.blob_id, sealed, row.plain_len)
            if row.kind == BlobKind.CHUNK:
                if vault.hasher.chunk_id(plain) != row.blob_id:
                    problems.append(f"pack {name}: chunk {row.blob_id.hex()[:16]} != its id")
                chunks[row.blob_id] = (row.offset, row.length)
            else:
                manifests[row.blob_id.decode()] = plain
    except StrongroomError as e:
        problems.append(f"pack {name}: {e}")
    return problems, len(data), chunks, manifests


_forked: list[Vault] = []  # in a forked pack checker: the vault it inherited


def _adopt(vault: Vault) -> None:
    _forked[:] = [vault]


def _check_pack_forked(name: str, meta: dict[str, Any]) -> Any:
    return _check_pack(_forked[0], name, meta)


def _checkers(vault: Vault) -> tuple[Executor, Callable[..., Any], list[Any]]:
    """Two pack checkers, and the function they run. On a local store they are forked
    processes: checking a pack is mostly per-blob Python (decrypt, decompress, keyed
    id), and two threads spent much of their time handing the GIL to each other and to
    the main thread parsing snapshot trees. They inherit the opened vault (its keys
    included), read packs only, and die with this process. On other stores (network
    clients are not safe across a fork) they are threads."""
    if type(vault.store) is LocalStore:
        return forked_workers(_adopt, vault), _check_pack_forked, []
    return ThreadPoolExecutor(max_workers=2), _check_pack, [vault]


def _check_objects(
    vault: Vault, folded: _Ledger, check: Check, deep: bool, progress: Progress | None
) -> int:
    live = {n: m for n, m in folded.objects.items() if n not in folded.deleted}
    total = 0
    chunk_maps: dict[str, dict[bytes, tuple[int, int]]] = {}
    manifests: dict[str, bytes] = {}
    pack_problems: dict[str, list[str]] = {}
    pool, check_pack, first = _checkers(vault)
    with pool:
        futures = {n: pool.submit(check_pack, *first, n, m) for n, m in sorted(live.items())}
        # while the packs are read and checked, parse the snapshots' trees
        trees = _load_trees(vault, folded)
        for name, fut in futures.items():
            problems, nbytes, chunks, mans = fut.result()
            total += nbytes
            if progress:
                progress(nbytes)
            pack_problems[name] = problems
            chunk_maps[name] = chunks
            manifests.update(mans)
    # large records list their content packs in their (encrypted) manifest blob
    for r in folded.records.values():
        if r.disposed is None and "chunks" not in r.manifest and r.id in manifests:
            m = json.loads(manifests[r.id])
            # a snapshot's file chunks are in the packs of its "refs"
            r.packs = sorted({*r.packs, *m.get("packs", []), *m.get("refs", [])})
    users: dict[str, list[str]] = {}
    for r in folded.records.values():
        if r.disposed is None:
            for p in r.packs:
                users.setdefault(p, []).append(r.id)
    for name, problems in pack_problems.items():
        for p in problems:
            check.fail(p, records=users.get(name, []), objects=[name])
    for r in folded.records.values():
        if r.disposed is not None:
            continue
        for p in r.packs:
            if p not in folded.objects:
                check.fail(
                    f"record {r.id} depends on {p}, which the ledger never stored",
                    records=[r.id],
                    objects=[p],
                )
            elif p in folded.deleted:
                check.fail(
                    f"record {r.id} depends on {p}, which was deleted", records=[r.id], objects=[p]
                )
        if "chunks" in r.manifest:
            m = vault.loader.manifest(r.id, r.manifest, r.size, r.sha256)
        elif r.id in manifests:
            m = json.loads(manifests[r.id])
        else:
            if r.manifest["pack"] in chunk_maps:
                check.fail(
                    f"record {r.id}: manifest missing from {r.manifest['pack']}",
                    records=[r.id],
                    objects=[r.manifest["pack"]],
                )
            continue
        if m.get("sha256") != r.sha256 or m.get("size") != r.size:
            check.fail(f"record {r.id}: manifest disagrees with the ledger", records=[r.id])
        total_len = 0
        for pack_i, offset, length, plain_len, cid in m["chunks"]:
            pack = m["packs"][pack_i]
            total_len += plain_len
            if chunk_maps.get(pack, {}).get(bytes.fromhex(cid)) != (offset, length):
                check.fail(
                    f"record {r.id}: chunk {cid[:16]} is not in {pack}",
                    records=[r.id],
                    objects=[pack],
                )
        if total_len != r.size:
            check.fail(
                f"record {r.id}: chunks add up to {total_len}, not {r.size} bytes", records=[r.id]
            )
        if r.id in trees:
            _check_tree(r, trees[r.id], chunk_maps, check)
        if deep and check.ok:
            h = hashlib.sha256()
            try:
                for data in vault.loader.chunks(m):
                    h.update(data)
            except StrongroomError as e:
                check.fail(f"record {r.id}: {e}", records=[r.id])
                continue
            if h.hexdigest() != r.sha256:
                check.fail(f"record {r.id}: content does not hash to its SHA-256", records=[r.id])
    known = set(folded.objects)
    orphans = [n for n in vault.store.list("packs/") if n not in known]
    if orphans:
        check.notes.append(
            f"{len(orphans)} pack(s) stored by an interrupted append are "
            f"referenced by no entry (harmless): {', '.join(orphans[:5])}"
        )
    return total


@dataclass(slots=True)
class _Tree:
    """What verify needs of one snapshot's manifest: the packs it lists as ``refs``, the
    chunks of the lines no earlier snapshot had, and the packs of every file line."""

    refs: set[str] = field(default_factory=set)
    new: list[tuple[bytes, list[tuple[str, int, int, bytes]]]] = field(default_factory=list)
    packs: set[tuple[str, ...]] = field(default_factory=set)
    error: str = ""


def _load_trees(vault: Vault, folded: _Ledger) -> dict[str, _Tree]:
    """Parse every live snapshot's manifest (each node checked as restore checks it).
    Successive snapshots share most lines — an unchanged file's line is reused as it was
    — so a line seen in an earlier snapshot is not parsed again."""
    trees: dict[str, _Tree] = {}
    seen: dict[bytes, tuple[str, ...]] = {}
    for r in folded.records.values():
        if r.disposed is not None or r.cls != SNAPSHOT_CLASS:
            continue
        tree = trees[r.id] = _Tree()
        try:
            m = vault.loader.manifest(r.id, r.manifest, r.size, r.sha256)
            tree.refs = set(m.get("refs", []))
            with tempfile.TemporaryFile() as f:
                for data in vault.loader.chunks(m):
                    f.write(data)
                f.seek(0)
                _parse_tree(f, tree, seen)
        except StrongroomError as e:
            tree.error = str(e)
    return trees


def _parse_tree(f: Any, tree: _Tree, seen: dict[bytes, tuple[str, ...]]) -> None:
    lines = iter_lines(f)
    header = snap.parse_header(next(lines, b"{}"))
    count = 0
    paths: set[bytes] = set()
    for line in lines:
        count += 1
        key = hashlib.blake2b(line, digest_size=16).digest()
        packs = seen.get(key)
        if packs is None:
            try:
                node = parse_node(json.loads(line))
            except ValueError as e:
                raise CorruptVault(f"snapshot node is not JSON: {e}") from e
            if node.path in paths:
                raise CorruptVault(f"snapshot names {show(node.path)!r} twice")
            paths.add(node.path)
            if node.chunks:
                tree.new.append((node.path, [(p, o, n, c) for p, o, n, _, c in node.chunks]))
            packs = seen[key] = tuple(sorted({c[0] for c in node.chunks}))
        if packs:
            tree.packs.add(packs)
    if header.get("nodes") != count:
        raise CorruptVault(f"snapshot header counts {header.get('nodes')} nodes, holds {count}")


def _check_tree(
    r: _Record,
    tree: _Tree,
    chunk_maps: dict[str, dict[bytes, tuple[int, int]]],
    check: Check,
) -> None:
    """A backup snapshot: its manifest parses and checks, every pack a file uses is in
    the snapshot's ``refs`` (so retained and held with it), and every chunk is in its
    pack where the line says."""
    if tree.error:
        check.fail(f"snapshot {r.id}: {tree.error}", records=[r.id])
        return
    for packs in tree.packs:
        for pack in packs:
            if pack not in tree.refs:
                check.fail(
                    f"snapshot {r.id}: a file uses {pack}, which the snapshot does not list",
                    records=[r.id],
                    objects=[pack],
                )
    bad = 0
    for path, chunks in tree.new:
        for pack, off, length, cid in chunks:
            if chunk_maps.get(pack, {}).get(cid) == (off, length):
                continue
            bad += 1
            if bad <= 10:
                check.fail(
                    f"snapshot {r.id}: {show(path)} names chunk {cid.hex()[:16]} in {pack}, "
                    "which is not there",
                    records=[r.id],
                    objects=[pack],
                )
    if bad > 10:
        check.fail(f"snapshot {r.id}: {bad - 10} more missing chunks", records=[r.id])


# --- retention and catalog ------------------------------------------------------------------


def _check_retention(vault: Vault, folded: _Ledger, check: Check) -> None:
    held: dict[str, set[str]] = {}
    for hid, e in folded.holds.items():
        if hid in folded.released:
            continue
        rows = vault.catalog.db.execute(
            "SELECT record_id FROM hold_records WHERE hold_id = ?", (hid,)
        ).fetchall()
        ids = set(e.get("records") or []) | {str(r[0]) for r in rows}
        for rid in ids:
            held.setdefault(rid, set()).add(hid)
    need: dict[str, tuple[str, list[str], bool]] = {}
    for r in folded.records.values():
        if r.disposed is not None:
            continue
        for p in r.packs:
            until, recs, h = need.get(p, ("", [], False))
            need[p] = (max(until, r.retain_until), [*recs, r.id], h or r.id in held)
    governance_left = 0
    for pack, (until, recs, must_hold) in sorted(need.items()):
        put_mode = folded.objects.get(pack, {}).get("mode", folded.mode)
        try:
            info = vault.store.head(pack)
        except StrongroomError as e:
            check.fail(f"{pack}: {e}", records=recs, objects=[pack])
            continue
        if info.retain_until.year < 1970:  # the store reports no lock at all
            check.fail(
                f"{pack} has no retention on the store, but records need it until {until}",
                records=recs,
                objects=[pack],
            )
        elif format_time(info.retain_until) < until:
            check.fail(
                f"{pack} is retained until {format_time(info.retain_until)}, but records "
                f"need it until {until}",
                records=recs,
                objects=[pack],
            )
        if put_mode == "COMPLIANCE" and info.mode != RetentionMode.COMPLIANCE:
            check.fail(
                f"{pack} is locked in {info.mode} mode; the vault is in COMPLIANCE mode",
                records=recs,
                objects=[pack],
            )
        if info.mode != RetentionMode.COMPLIANCE:
            governance_left += 1
        if must_hold and not info.legal_hold:
            check.fail(
                f"{pack} holds content of records under legal hold but has no legal hold "
                "on the store",
                records=[r for r in recs if r in held],
                objects=[pack],
            )
    if governance_left:
        check.notes.append(
            f"{governance_left} object(s) are locked in GOVERNANCE mode (stored before the vault "
            "was switched to COMPLIANCE, or in a GOVERNANCE vault): not 17a-4 grade"
        )
    # keys, vault.json and the ledger must outlive every record that depends on them
    latest = max(
        (r.retain_until for r in folded.records.values() if r.disposed is None), default=""
    )
    if latest:
        short = []
        for name in vault.infrastructure_objects():
            try:
                if format_time(vault.store.head(name).retain_until) < latest:
                    short.append(name)
            except StrongroomError as e:
                check.fail(f"{name}: {e}", objects=[name])
        if short:
            check.fail(
                f"{len(short)} key/config/ledger object(s) are retained for less than the "
                f"latest record ({latest}): the audit trail could expire before what it audits",
                objects=short[:50],
            )
    # a pure reading: verify must not write (the ledger may be damaged)
    now = vault.clk.peek().trusted
    for r in folded.records.values():
        if r.disposed is None and r.id not in held and parse_time(r.retain_until) <= now:
            check.notes.append(f"record {r.id} is past retention and can be disposed of")
            if len(check.notes) > 20:
                break


def _check_catalog(vault: Vault, folded: _Ledger, check: Check) -> None:
    cat = vault.catalog
    if cat.indexed != folded.size:
        check.fail(f"the catalog has applied {cat.indexed} entries; the ledger has {folded.size}")
    seen = set()
    for row in cat.all_records():
        rid = row["id"]
        seen.add(rid)
        r = folded.records.get(rid)
        if r is None:
            check.fail(
                f"the catalog lists record {rid} (serial {row['serial']}), which the "
                "ledger does not hold",
                records=[rid],
            )
            continue
        if (
            row["serial"],
            row["sha256"],
            row["size"],
            row["retain_until"],
            row["disposed_serial"],
        ) != (r.serial, r.sha256, r.size, r.retain_until, r.disposed):
            check.fail(f"the catalog's row for record {rid} differs from the ledger", records=[rid])
    for rid in sorted(set(folded.records) - seen):
        check.fail(f"record {rid} is in the ledger but not in the catalog", records=[rid])
    active = {h["id"] for h in cat.holds()}
    expected = set(folded.holds) - folded.released
    if active != expected:
        check.fail(f"catalog holds {sorted(active)} differ from the ledger's {sorted(expected)}")
