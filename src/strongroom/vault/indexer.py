"""Applying ledger entries to the catalog, and loading what they point to.

:class:`Indexer` is the only code that writes catalog rows. The same
:meth:`Indexer.apply` runs live (right after a commit) and in ``reindex`` (from an
empty catalog), so the two give the same catalog. :class:`Loader` reads packs,
manifests and record content from the store — or, during a live commit, from the
copies the ingest pipeline still holds in memory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from strongroom.catalog import DEDUP_MIN, Catalog, Query
from strongroom.core.entries import Entry, EntryType, decode_entry
from strongroom.core.extract import MAX_TEXT, Extracted, extract
from strongroom.core.retention import format_time
from strongroom.errors import CorruptVault, NotFound
from strongroom.vault.packs import BlobKind, IndexRow, index_location, open_blob, parse_index

if TYPE_CHECKING:
    from strongroom.vault.vault import Vault

Manifest = dict[str, Any]


class Loader:
    """Reads packs and records; caches what a live commit has just written."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.live_indexes: dict[str, list[IndexRow]] = {}
        self.live_manifests: dict[str, Manifest] = {}
        self.live_content: dict[str, bytes] = {}
        self.live_details: dict[str, dict[str, Any]] = {}

    def forget(self) -> None:
        self.live_indexes.clear()
        self.live_manifests.clear()
        self.live_content.clear()
        self.live_details.clear()

    def details(self, key: str, sealed: str) -> dict[str, Any]:
        hit = self.live_details.get(key)
        return hit if hit is not None else self.vault.open_details(sealed, key.encode())

    def pack_index(self, name: str) -> list[IndexRow]:
        rows = self.live_indexes.get(name)
        if rows is not None:
            return rows
        store = self.vault.store
        size = store.head(name).size
        off, length = index_location(store.get(name, max(0, size - 8), 8), size, name)
        return parse_index(store.get(name, off, length), self.vault.keyring, name)

    def blob(self, pack: str, blob_id: bytes, offset: int, length: int, plain_len: int) -> bytes:
        sealed = self.vault.store.get(pack, offset, length)
        if len(sealed) != length:
            raise CorruptVault(f"pack {pack}: blob at {offset} is truncated")
        return open_blob(self.vault.keyring, pack, blob_id, sealed, plain_len)

    def manifest(self, record_id: str, ref: Mapping[str, Any], size: int, sha256: str) -> Manifest:
        """The record's chunk list: inline in its entry, or in a manifest blob."""
        if "chunks" in ref:
            return {
                "record": record_id,
                "size": size,
                "sha256": sha256,
                "packs": list(ref["packs"]),
                "chunks": list(ref["chunks"]),
            }
        m = self.live_manifests.get(record_id)
        if m is None:
            raw = self.blob(
                ref["pack"], record_id.encode(), ref["offset"], ref["length"], ref["plain_len"]
            )
            m = json.loads(raw)
        if not isinstance(m, dict) or m.get("record") != record_id:
            raise CorruptVault(f"manifest of record {record_id} does not name it")
        return m

    def chunks(self, m: Manifest, limit: int | None = None) -> Any:
        """Yield the record's content chunk by chunk, each checked by its keyed id."""
        packs: list[str] = m["packs"]
        done = 0
        for pack_i, offset, length, plain_len, cid in m["chunks"]:
            if limit is not None and done >= limit:
                return
            chunk_id = bytes.fromhex(cid)
            data = self.blob(packs[pack_i], chunk_id, offset, length, plain_len)
            if self.vault.hasher.chunk_id(data) != chunk_id:
                raise CorruptVault(f"chunk {cid[:16]} in {packs[pack_i]} does not match its id")
            done += len(data)
            yield data

    def content_prefix(self, record_id: str, m: Manifest) -> tuple[bytes, bool]:
        live = self.live_content.get(record_id)
        if live is not None:
            return live[:MAX_TEXT], len(live) > MAX_TEXT
        buf = bytearray()
        for data in self.chunks(m, MAX_TEXT):
            buf += data
        return bytes(buf[:MAX_TEXT]), int(m["size"]) > MAX_TEXT

    def write_content(self, rec: dict[str, Any], out: BinaryIO) -> None:
        # the chunk list (or where the manifest blob is) is in the record's ledger entry
        entry = decode_entry(self.vault.ledger.entry(rec["serial"]))
        if entry.type is not EntryType.RECORD_APPEND or entry["record"] != rec["id"]:
            raise CorruptVault(f"ledger entry {rec['serial']} is not record {rec['id']}")
        m = self.manifest(rec["id"], entry["manifest"], rec["size"], rec["sha256"])
        h = hashlib.sha256()
        for data in self.chunks(m):
            h.update(data)
            out.write(data)
        if h.hexdigest() != rec["sha256"]:
            raise CorruptVault(
                f"record {rec['id']}: content hash {h.hexdigest()} differs from the ledger's "
                f"{rec['sha256']}"
            )


_INSERT_RECORD = (
    "INSERT INTO records(rowid, id, serial, class, source, source_id, source_key, sha256, size,"
    " received, retain_until, rule, filename, flags, actor)"
    " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PARTICIPANT = "INSERT INTO participants(record_id, role, address) VALUES(?, ?, ?)"
_INSERT_FTS = "INSERT INTO fts(rowid, body, subject, participants) VALUES(?, ?, ?, ?)"
_INSERT_RECORD_PACK = "INSERT OR IGNORE INTO record_packs(record_id, pack) VALUES(?, ?)"


# entries that neither read nor change the tables record appends queue rows for
# (records, participants, fts, record_packs): those rows need not be written first
KEEP_QUEUED = frozenset(
    {
        EntryType.RECORD_APPEND,
        EntryType.OBJECT_PUT,
        EntryType.OBJECT_EXTEND,
        EntryType.OBJECT_HOLD,
        EntryType.LEDGER_EXTEND,
        EntryType.ACCESS,
        EntryType.DENIED,
        EntryType.VERIFY,
        EntryType.CLOCK,
        EntryType.KEY_ROTATE,
        EntryType.REINDEX,
        EntryType.REPAIR,
    }
)
_SET_META = "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"


_VALUES = re.compile(r"^(INSERT (?:OR \w+ )?INTO \w+\([^)]*\)) VALUES\(([?, ]*)\)$")


@functools.lru_cache(maxsize=32)
def _bulk_sql(sql: str) -> str | None:
    """``INSERT ... VALUES(?, ...)`` as one statement over a JSON array of rows, or None
    for other SQL. One execute means one ``sqlite3_step``: SQLite inserts every row with
    the GIL released, where ``executemany`` takes the GIL back for each row's bindings —
    and a helper thread doing that beside a busy main thread waits for the GIL at every
    row (it ran three times slower than alone)."""
    m = _VALUES.match(sql)
    if m is None:
        return None
    n = m.group(2).count("?")
    cols = ", ".join(f"value ->> {i}" for i in range(n))
    return f"{m.group(1)} SELECT {cols} FROM json_each(?)"  # noqa: S608 (our own SQL)


Rows = dict[str, list[tuple[Any, ...]]]  # queued rows by INSERT statement, in order


def write_rows(db: sqlite3.Connection, rows: Rows, *, bulk_json: bool = True) -> None:
    """Insert queued rows, table by table, in order. With ``bulk_json`` (for a helper
    thread beside a busy main thread) each table's rows go in as one JSON array: values
    are str, int or None, which JSON carries exactly (SQLite's ``->>`` gives TEXT and
    INTEGER back). Without it (a process of its own, no GIL to share) ``executemany``,
    which costs less CPU than encoding and parsing the JSON."""
    for sql, batch in rows.items():
        bulk = _bulk_sql(sql) if bulk_json and len(batch) > 1 else None
        if bulk is None:
            db.executemany(sql, batch)
        else:
            db.execute(bulk, (json.dumps(batch, ensure_ascii=False),))


class Indexer:
    """Turns ledger entries into catalog rows (inside the caller's transaction)."""

    def __init__(self, catalog: Catalog, loader: Loader) -> None:
        self.catalog = catalog
        self.loader = loader
        self.newly_held: list[tuple[str, str]] = []  # (hold id, record id) for the live path
        self._buf: dict[str, list[tuple[Any, ...]]] = {}
        self._query_holds: list[tuple[str, Query]] | None = None
        self._last_time: tuple[datetime | None, str] = (None, "")

    def apply(self, serial: int, e: Entry) -> None:
        db = self.catalog.db
        t = e.type
        if t not in KEEP_QUEUED:
            self.flush()
        if t is EntryType.HOLD_PLACE or t is EntryType.HOLD_RELEASE:
            self._query_holds = None
        if t is EntryType.VAULT_INIT or t is EntryType.MODE_SET:
            self.catalog.set_meta("mode", str(e["mode"]))
        elif t is EntryType.OBJECT_PUT:
            self._object_put(db, serial, e)
        elif t is EntryType.OBJECT_EXTEND:
            db.execute(
                "UPDATE packs SET retain_until = max(retain_until, ?) WHERE name = ?",
                (e["retain_until"], e["object"]),
            )
        elif t is EntryType.OBJECT_HOLD:
            db.execute(
                "UPDATE packs SET legal_hold = ? WHERE name = ?", (1 if e["on"] else 0, e["object"])
            )
        elif t is EntryType.OBJECT_DELETE:
            db.execute("UPDATE packs SET deleted_serial = ? WHERE name = ?", (serial, e["object"]))
            db.execute("DELETE FROM chunks WHERE pack = ?", (e["object"],))
        elif t is EntryType.RECORD_APPEND:
            self._record_append(db, serial, e)
        elif t is EntryType.RECORD_EXTEND:
            db.execute(
                "UPDATE records SET retain_until = max(retain_until, ?) WHERE id = ?",
                (e["retain_until"], e["record"]),
            )
        elif t is EntryType.RECORD_DISPOSE:
            rid = e["record"]
            row = db.execute("SELECT rowid FROM records WHERE id = ?", (rid,)).fetchone()
            # derived data that came from the content goes with it, so that a rebuild (which
            # can no longer read the content) gives the same catalog
            db.execute(
                "UPDATE records SET disposed_serial = ?, flags = 'disposed' WHERE id = ?",
                (serial, rid),
            )
            if row is not None:
                db.execute("DELETE FROM fts WHERE rowid = ?", (row[0],))
            db.execute("DELETE FROM participants WHERE record_id = ?", (rid,))
            db.execute("DELETE FROM hold_records WHERE record_id = ?", (rid,))
            db.execute("DELETE FROM record_packs WHERE record_id = ?", (rid,))
        elif t is EntryType.HOLD_PLACE:
            self._hold_place(db, serial, e)
        elif t is EntryType.HOLD_RELEASE:
            db.execute("UPDATE holds SET released_serial = ? WHERE id = ?", (serial, e["hold"]))

    def _object_put(self, db: sqlite3.Connection, serial: int, e: Entry) -> None:
        name = e["object"]
        db.execute(
            "INSERT INTO packs(name, sha256, size, retain_until, legal_hold, put_serial)"
            " VALUES(?, ?, ?, ?, ?, ?)",
            (
                name,
                e["sha256"],
                e["size"],
                e["retain_until"],
                0,  # packs are stored without a hold; object.hold entries set it
                serial,
            ),
        )
        try:
            index = self.loader.pack_index(name)
        except NotFound:
            # deleted by a later disposal (its OBJECT_DELETE drops the rows anyway); if it
            # vanished otherwise, verify reports the missing pack
            index = []
        rows = [
            (r.blob_id, name, r.offset, r.length, r.plain_len)
            for r in index
            if r.kind == BlobKind.CHUNK and r.plain_len >= DEDUP_MIN  # only these are looked up
        ]
        db.executemany(
            "INSERT OR IGNORE INTO chunks(id, pack, offset, length, plain_len)"
            " VALUES(?, ?, ?, ?, ?)",
            rows,
        )

    def _record_append(self, db: sqlite3.Connection, serial: int, e: Entry) -> None:
        f = e.fields
        rid = f["record"]
        details = self.loader.details(rid, f["sealed"])
        live = self.loader.live_content.get(rid)
        if live is not None and "chunks" in f["manifest"]:
            # just appended, chunk list inline: its packs are the entry's, content in hand
            packs = f["packs"]
            x = extract(
                f["class"], details.get("filename", ""), live[:MAX_TEXT], len(live) > MAX_TEXT
            )
        else:
            pack_set = set(f["packs"])
            try:
                m = self.loader.manifest(rid, f["manifest"], f["size"], f["sha256"])
                pack_set.update(m["packs"])
                pack_set.update(m.get("refs", ()))  # a snapshot's file chunks
                content, truncated = self.loader.content_prefix(rid, m)
                x = extract(f["class"], details.get("filename", ""), content, truncated)
            except NotFound:
                # content disposed of later (reindex), or missing (verify reports it)
                x = Extracted("", details.get("filename", ""), (), ("content-unavailable",))
            packs = sorted(pack_set)
        flags = sorted({*x.flags, *f.get("flags", ())}) if x.flags or f.get("flags") else ()
        self._queue(
            _INSERT_RECORD,
            (
                serial,
                rid,
                serial,
                f["class"],
                details.get("source", ""),
                details.get("source_id", ""),
                f["source_key"],
                f["sha256"],
                f["size"],
                self._time_text(e.time),
                f["retain_until"],
                f["rule"],
                details.get("filename", ""),
                ",".join(flags),
                e.actor,
            ),
        )
        for role, addr in x.participants:
            self._queue(_INSERT_PARTICIPANT, (rid, role, addr))
        # the record's rowid is its serial, so the FTS row can be queued with it
        self._queue(
            _INSERT_FTS, (serial, x.body, x.subject, " ".join(a for _, a in x.participants))
        )
        for p in packs:
            self._queue(_INSERT_RECORD_PACK, (rid, p))
        holds = self._active_query_holds()
        if holds:
            self.flush()
            for hold_id, q in holds:
                if self.catalog.matches(q, rid):
                    db.execute(
                        "INSERT OR IGNORE INTO hold_records(hold_id, record_id) VALUES(?, ?)",
                        (hold_id, rid),
                    )
                    self.newly_held.append((hold_id, rid))

    def _time_text(self, t: datetime) -> str:
        if t != self._last_time[0]:  # records of one group share their time
            self._last_time = (t, format_time(t))
        return self._last_time[1]

    def _queue(self, sql: str, row: tuple[Any, ...]) -> None:
        self._buf.setdefault(sql, []).append(row)

    def flush(self) -> None:
        """Write queued rows (record appends are batched: one executemany per table)."""
        write_rows(self.catalog.db, self._buf)
        self._buf = {}

    def _active_query_holds(self) -> list[tuple[str, Query]]:
        if self._query_holds is None:
            self._query_holds = [
                (h["id"], Query.from_json(json.loads(h["query"])))
                for h in self.catalog.holds()
                if h["kind"] == "query"
            ]
        return self._query_holds

    def apply_all(self, entries: Iterable[tuple[int, Entry]], background: bool = False) -> None:
        """Apply entries in one catalog transaction. With ``background``, the queued bulk
        rows and the COMMIT are finished on the catalog's helper thread (see
        :meth:`Catalog.commit`); the next catalog access waits for them."""
        self.finish(self.stage(entries), background=background)

    def stage(self, entries: Iterable[tuple[int, Entry]]) -> Rows:
        """First half of :meth:`apply_all`: open the transaction, apply the entries and
        return the queued rows; then :meth:`finish` (or :meth:`cancel`)."""
        self._query_holds = None  # re-read: a background commit may have been rolled back
        try:
            self.catalog.begin()
            last = -1
            for serial, entry in entries:
                self.apply(serial, entry)
                last = serial
            rows, self._buf = self._buf, {}
            if last >= 0:
                rows.setdefault(_SET_META, []).append(("indexed", str(last + 1)))
        except BaseException:
            self.cancel()
            raise
        return rows

    def cancel(self) -> None:
        """Roll back: forget buffered rows and cached holds with it."""
        self.catalog.rollback()
        self._buf = {}
        self._query_holds = None
        self.newly_held.clear()

    def finish(self, rows: Rows, *, background: bool) -> None:
        self.catalog.commit(lambda db: write_rows(db, rows), background=background)

    def _hold_place(self, db: sqlite3.Connection, serial: int, e: Entry) -> None:
        hid = e["hold"]
        d = self.loader.vault.open_details(e["sealed"], hid.encode())
        query = d.get("query")
        db.execute(
            "INSERT INTO holds(id, kind, query, reason, actor, placed, placed_serial)"
            " VALUES(?, ?, ?, ?, ?, ?, ?)",
            (
                hid,
                e["scope"],
                json.dumps(query, sort_keys=True) if query else "",
                d.get("reason", ""),
                e.actor,
                format_time(e.time),
                serial,
            ),
        )
        if e["scope"] == "query":
            ids = self.catalog.record_ids(Query.from_json(query or {}))
        else:
            ids = list(e["records"])
        db.executemany(
            "INSERT OR IGNORE INTO hold_records(hold_id, record_id) VALUES(?, ?)",
            [(hid, r) for r in ids],
        )
