"""Appending records: chunk, deduplicate, compress, encrypt, pack, group-commit.

A record's raw original bytes are stored exactly as received. Content up to
:data:`SMALL` bytes is one chunk; larger content is split by FastCDC (content-defined
chunking, so an insertion moves only nearby boundaries). Each chunk is named by a keyed
hash (HMAC-SHA256 under a key derived from the master key, so chunk ids reveal nothing
about content to someone without keys), deduplicated against the catalog, compressed
with zstd when that helps, sealed with AES-256-GCM and laid into a pack of the
record's expiry bucket. zstd, AES-GCM and the hashes release the GIL, so large content
uses both cores through a small thread pool, with a bounded number of chunks in flight
(peak memory does not grow with input size).

Group commit: records are acknowledged (``on_ack``) only after :meth:`Appender.commit`
has made their packs, the ledger entries and a signed checkpoint durable.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from pyfastcdc import FastCDC

from strongroom.catalog import CHUNK_SQL, DEDUP_MIN
from strongroom.core.canonical import canonical_json
from strongroom.core.entries import EntryType, RecordEncoder
from strongroom.core.extract import MAX_TEXT
from strongroom.core.ids import new_id
from strongroom.core.retention import Decision, format_time, parse_time
from strongroom.errors import BadInput, CorruptVault
from strongroom.store.base import RetentionMode
from strongroom.vault.lifecycle import hold_packs_of
from strongroom.vault.packs import BlobKind, BlobRef, PackWriter, bucket_of, encode_blob
from strongroom.vault.vault import Vault

SMALL = 256 << 10  # content up to this size is a single chunk
CDC_MIN, CDC_AVG, CDC_MAX = 256 << 10, 1 << 20, 4 << 20
INLINE_CHUNKS = 4  # records of up to this many chunks keep their chunk list in the entry
PACK_TARGET = 16 << 20  # a pack is closed when its (uncompressed) content reaches this
IN_FLIGHT = 6  # chunks being compressed/sealed at once (bounds memory)
SMALL_QUEUE = 512  # in-memory records are checked for re-delivery and packed in groups
SMALL_QUEUE_BYTES = 8 << 20
# a batch this large is worth a process of its own for the catalog (it starts in about
# 0.1 s, beside the rest of the batch being added)
INDEXER_PROCESS_AFTER = 1000
_DUP_SQL = (
    "SELECT source_key, sha256, id, serial, size, retain_until, rule FROM records"
    " WHERE disposed_serial IS NULL AND source_key IN ({}) ORDER BY serial"
)


@dataclass(frozen=True, slots=True)
class Item:
    """One record to append. ``open`` returns its raw bytes as a binary stream."""

    open: Callable[[], BinaryIO]
    record_class: str = "file"
    source: str = "cli"
    source_id: str = ""
    filename: str = ""
    flags: tuple[str, ...] = ()
    data: bytes | None = None  # content already in memory (skips the stream)
    # packs the content refers to besides its own chunks (a backup snapshot's tree names
    # the chunks of its files): kept in the record's manifest blob, retained with it
    refs: tuple[str, ...] = ()

    @staticmethod
    def from_bytes(data: bytes, **kw: str) -> Item:
        return Item(open=lambda: io.BytesIO(data), data=data, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AppendResult:
    record: str
    serial: int
    sha256: str
    size: int
    retain_until: datetime
    rule: str
    duplicate: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "record": self.record,
            "serial": self.serial,
            "sha256": self.sha256,
            "size": self.size,
            "retain_until": format_time(self.retain_until),
            "rule": self.rule,
            "duplicate": self.duplicate,
        }


@dataclass(slots=True)
class _Pending:
    result: AppendResult
    at: datetime
    fields: dict[str, object] = field(default_factory=dict)
    encoder: RecordEncoder | None = None  # the fast encoder, for one-chunk records


_VALID_CLASS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


def _utf8(text: str) -> str:
    """``text`` as valid Unicode: a name read from a file system may hold bytes that are
    not UTF-8 (they arrive as lone surrogates); those become ``\\xNN`` escapes, so the
    metadata stays readable and distinct while the record's bytes are untouched."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _printable_names(item: Item) -> Item:
    return dataclasses.replace(item, source_id=_utf8(item.source_id), filename=_utf8(item.filename))


def check_label(what: str, value: str) -> str:
    if not value or len(value) > 64 or not set(value) <= _VALID_CLASS:
        raise BadInput(
            f"invalid record {what} {value!r}",
            f"A {what} is 1-64 characters of a-z, 0-9, '.', '_' and '-'.",
        )
    return value


class _FewerFullCollections:
    """While an appender is open, Python's cyclic GC makes a full collection ten times
    less often. A batch holds some 20 small containers per record until its commit frees
    them (by reference count: they form no cycles), and each full collection walked them
    all — about a fifth of the ingest thread's time with chat-sized records. Young
    collections run as usual. Process-wide, so counted: the last appender to close puts
    the setting back (unless someone else changed it meanwhile)."""

    _open = 0
    _saved: tuple[int, int, int] | None = None
    _ours: tuple[int, int, int] | None = None
    _lock = threading.Lock()

    @classmethod
    def enter(cls) -> None:
        with cls._lock:
            cls._open += 1
            if cls._open == 1:
                g0, g1, g2 = cls._saved = gc.get_threshold()
                cls._ours = (g0, g1, max(g2, 100))
                gc.set_threshold(*cls._ours)

    @classmethod
    def exit(cls) -> None:
        with cls._lock:
            cls._open -= 1
            if cls._open == 0 and cls._saved is not None:
                if gc.get_threshold() == cls._ours:
                    gc.set_threshold(*cls._saved)
                cls._saved = cls._ours = None


class Appender:
    """Buffers appends into batches; one commit per batch (group commit)."""

    def __init__(
        self,
        vault: Vault,
        on_ack: Callable[[AppendResult], None] | None = None,
        batch_records: int = 5000,
        batch_bytes: int = 256 << 20,
        workers: int = 2,
        lock_margin: timedelta = timedelta(0),
    ) -> None:
        self.vault = vault
        # a pack whose retention must be raised is raised this much further, so that the
        # records of the next days reuse it without another extension (Veeam's "block")
        self.lock_margin = lock_margin
        self.new_plain = 0  # bytes of new (not deduplicated) chunks, and as stored
        self.new_stored = 0
        # writers that blobs are still being prepared for outside this class (backup's
        # small-file groups): not stored until the count is back to zero
        self.reserved: dict[int, int] = {}
        self.on_ack = on_ack
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seal")
        # two pack writers: an S3 PUT is mostly waiting, and two overlap (at most two
        # finished packs are held in memory either way, see _store_pack)
        self._put_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pack-writer")
        self._cdc = FastCDC(avg_size=CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        # The last two batches, until the catalog has surely indexed them: catalog reads
        # go through read-only connections that do not wait for its background commits
        # (the indexer process may be two batches behind, see catalogproc.SLOTS).
        self._prev_records: dict[tuple[str, str], AppendResult] = {}
        self._prev_chunks: dict[bytes, BlobRef] = {}
        self._prev_until: dict[str, datetime] = {}
        # the last batch's own records, chunks and pack retentions (merged into _prev_*)
        self._last: tuple[
            dict[tuple[str, str], AppendResult], dict[bytes, BlobRef], dict[str, datetime]
        ] = ({}, {}, {})
        self._indexer_asked = False
        self._closed = False
        self._reset()
        vault.settle_catalog()  # from here on, the read-only connections miss only _prev_*
        _FewerFullCollections.enter()

    def _reset(self) -> None:
        self._writers: dict[str, PackWriter] = {}
        self._closing: list[PackWriter] = []
        self._flushed: list[Future[dict[str, object]]] = []  # object.put fields, in order
        self._new_chunks: dict[bytes, BlobRef] = {}
        self._extend: dict[str, datetime] = {}
        self._records: list[_Pending] = []
        self._by_content: dict[tuple[str, str], AppendResult] = {}
        self._batch_dups: list[str] = []
        self._bytes = 0
        self._writer_fill: dict[str, int] = {}
        self._labels_ok: set[tuple[str, str]] = set()
        self._stored_until: dict[str, datetime] = {}
        self._small: list[Item] = []
        self._small_bytes = 0
        self._encoders: dict[tuple[str, str, str, tuple[str, ...]], RecordEncoder] = {}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _FewerFullCollections.exit()
        self.pool.shutdown(wait=True)
        self._put_pool.shutdown(wait=True)
        for db in self._readers:
            db.close()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.commit()
            else:
                self.abort()
        finally:
            self.close()

    def abort(self) -> None:
        """Drop the batch: nothing in it is acknowledged. Packs already stored stay
        (they are immutable) but no entry references them; ``verify`` lists them."""
        for f in self._flushed:
            f.exception()  # wait: nothing of this batch is written after abort returns
        self.vault.loader.forget()
        self._reset()

    # --- packs --------------------------------------------------------------------------

    def writer(self, bucket: str, planned: int) -> PackWriter:
        w = self._writers.get(bucket)
        if w is None or (self._writer_fill[w.name] + planned > PACK_TARGET and w.count):
            if w is not None:
                self._closing.append(w)
            w = PackWriter(bucket, self.vault.keyring.current)
            self._writers[bucket] = w
            self._writer_fill[w.name] = 0
        self._writer_fill[w.name] += planned
        return w

    def _store_pack(self, w: PackWriter) -> None:
        """Hand a finished pack to the pack-writer thread (at most two in flight, which
        bounds memory); its object.put entry is added at commit, once it is durable."""
        assert w.retain_until is not None
        self.vault.loader.live_indexes[w.name] = w.rows
        self._stored_until[w.name] = w.retain_until
        while sum(not f.done() for f in self._flushed) >= 2:
            next(f for f in self._flushed if not f.done()).result()
        self._flushed.append(self._put_pool.submit(self._put_pack, w, self.vault.mode))

    def _put_pack(self, w: PackWriter, mode: RetentionMode) -> dict[str, object]:
        assert w.retain_until is not None
        data = w.finish()
        info = self.vault.store.put(w.name, data, retain_until=w.retain_until, mode=mode)
        return {
            "object": w.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": info.size,
            "retain_until": format_time(w.retain_until),
        }

    def need(self, pack: str, until: datetime) -> None:
        """Make sure ``pack`` is retained at least until ``until``: raise an open pack's
        retention, or plan an extension of a stored one (to ``until`` plus the lock
        margin), carried out at commit before any entry refers to it."""
        w = self._open_writer(pack)
        if w is not None:
            w.note_retention(until + self.lock_margin)
            return
        cur = self.retention_of(pack)
        if cur is None:
            raise CorruptVault(f"a chunk was found in {pack}, which the catalog does not hold")
        if cur < until:
            self._extend[pack] = max(self._extend.get(pack, until), until + self.lock_margin)

    def _open_writer(self, pack: str) -> PackWriter | None:
        for w in (*self._writers.values(), *self._closing):
            if w.name == pack:
                return w
        return None

    def retention_of(self, pack: str) -> datetime | None:
        if pack in self._extend:
            return self._extend[pack]
        if pack in self._stored_until:
            return self._stored_until[pack]
        if pack in self._prev_until:
            return self._prev_until[pack]
        row = (
            self._reader()
            .execute("SELECT retain_until FROM packs WHERE name=?", (pack,))
            .fetchone()
        )
        return None if row is None else parse_time(row[0])

    # --- appending ----------------------------------------------------------------------

    def add(self, item: Item) -> None:
        """Append one record. Its result — a new record, or the existing one when the
        same source delivers the same content again — goes to ``on_ack`` once durable
        (a re-delivery of an archived record: at once)."""
        if not (item.source_id.isascii() and item.filename.isascii()):
            item = _printable_names(item)
        if (item.record_class, item.source) not in self._labels_ok:
            check_label("class", item.record_class)
            check_label("source", item.source)
            self._labels_ok.add((item.record_class, item.source))
        if item.data is not None and len(item.data) <= SMALL:
            self._small.append(item)
            self._small_bytes += len(item.data)
            if len(self._small) >= SMALL_QUEUE or self._small_bytes >= SMALL_QUEUE_BYTES:
                self._add_small()
        else:
            self._add_small()  # in order
            self._add_stream(item)
        queued = len(self._records) + len(self._small)
        if queued >= INDEXER_PROCESS_AFTER and not self._indexer_asked:
            self._indexer_asked = True
            self.vault.start_indexer_process()
        if queued >= self.batch_records or self._bytes + self._small_bytes >= self.batch_bytes:
            self.commit()

    def _add_small(self) -> None:
        """Append the queued in-memory records: one catalog query finds re-deliveries."""
        items, self._small, self._small_bytes = self._small, [], 0
        if not items:
            return
        vault = self.vault
        keys = [vault.source_key(it.source, it.source_id or it.filename) for it in items]
        shas = [hashlib.sha256(it.data or b"").hexdigest() for it in items]
        archived = self._archived(keys)
        # one reading of the clock and one retention decision per class and source for
        # the group: they were all received within this moment
        now, start = vault.times()
        decided: dict[tuple[str, str], _Decided] = {}
        for item, key, sha in zip(items, keys, shas, strict=True):
            if self._duplicate(key, sha, archived) is None:
                d = decided.get((item.record_class, item.source))
                if d is None:
                    d = decided[item.record_class, item.source] = self._decide(item, start)
                self._add(item, None, key, sha, item.data, now, d)

    def _add_stream(self, item: Item) -> None:
        try:
            stream = item.open()
        except OSError as e:
            raise BadInput(f"cannot read {item.filename or 'input'}: {e.strerror or e}") from e
        with stream:
            try:
                key = self.vault.source_key(item.source, item.source_id or item.filename)
                head = stream.read(SMALL + 1)
                if len(head) <= SMALL:
                    sha = hashlib.sha256(head).hexdigest()
                    if self._duplicate(key, sha, self._archived([key])) is None:
                        self._add(item, None, key, sha, head)
                else:
                    self._add(item, stream, key, "", head)
            except OSError as e:
                raise BadInput(f"error reading {item.filename or 'input'}: {e}") from e

    def _decide(self, item: Item, start: datetime) -> _Decided:
        d = self.vault.opts.policy.decide(item.record_class, item.source, start)
        return d, bucket_of(d.retain_until), format_time(d.retain_until)

    def _add(
        self,
        item: Item,
        stream: BinaryIO | None,
        source_key: str,
        digest: str,
        head: bytes | None,
        now: datetime | None = None,
        decided: _Decided | None = None,
    ) -> None:
        """Append one record whose content is ``head`` (its SHA-256 is ``digest``), or
        — with ``stream`` — ``head`` and the rest of the stream."""
        vault = self.vault
        if now is None or decided is None:
            now, start = vault.times()
            decided = self._decide(item, start)
        decision, bucket, until_text = decided
        lock = (
            decision.retain_until + self.lock_margin if self.lock_margin else decision.retain_until
        )
        assert head is not None
        chunks: list[tuple[BlobRef, bytes]] = []
        prefix = bytearray()
        fresh = False  # the content is one chunk just laid into an open pack
        if stream is None:
            if head:
                before = self.new_plain
                chunks.append(self._chunk_inline(head, bucket, lock))
                fresh = self.new_plain != before
            size = len(head)
        else:
            sha = hashlib.sha256()
            size = self.chunk_stream(head, stream, bucket, lock, sha, chunks, prefix)
            digest = sha.hexdigest()
            # chunks already stored stay (immutable); a re-delivery adds no record
            if self._duplicate(source_key, digest, self._archived([source_key])) is not None:
                return
        record_id = new_id(now)
        # chunks reused from packs that would expire too early get their retention extended
        # (a chunk just added raised its open pack's retention already)
        packs = sorted({ref.pack for ref, _ in chunks})
        if not fresh or item.refs:
            for p in sorted({*packs, *item.refs}):
                self.need(p, decision.retain_until)
        pack_index = {p: i for i, p in enumerate(packs)}
        chunk_rows = [
            [pack_index[r.pack], r.offset, r.length, r.plain_len, cid.hex()] for r, cid in chunks
        ]
        if len(chunks) <= INLINE_CHUNKS and not item.refs:
            # small records: the chunk list travels in the ledger entry, no manifest blob
            manifest_field: dict[str, object] = {"packs": packs, "chunks": chunk_rows}
            all_packs = packs
        else:
            manifest = {
                "v": 1,
                "record": record_id,
                "size": size,
                "sha256": digest,
                "packs": packs,
                "chunks": chunk_rows,
            }
            if item.refs:
                manifest["refs"] = sorted(set(item.refs))
            mw = self.writer(bucket, 256)
            mw.note_retention(decision.retain_until + self.lock_margin)
            mref = mw.add(record_id.encode(), BlobKind.MANIFEST, canonical_json(manifest))
            manifest_field = {
                "pack": mref.pack,
                "offset": mref.offset,
                "length": mref.length,
                "plain_len": mref.plain_len,
            }
            # the content packs are listed in the manifest: a record of any size keeps a
            # bounded entry (the catalog and verify read them from there)
            all_packs = [mref.pack]
            vault.loader.live_manifests[record_id] = manifest
        # what a reindex would extract from: the first MAX_TEXT (+1) bytes of the content
        vault.loader.live_content[record_id] = (
            head if len(head) <= SMALL else bytes(prefix[: MAX_TEXT + 1])
        )
        result = AppendResult(record_id, -1, digest, size, decision.retain_until, decision.rule)
        details = {"source": item.source, "source_id": item.source_id, "filename": item.filename}
        sealed = vault.seal_record_details(item.source, item.source_id, item.filename, record_id)
        vault.loader.live_details[record_id] = details
        encoder = None
        if len(chunks) <= 1 and "chunks" in manifest_field:
            ek = (item.record_class, decision.rule, until_text, item.flags)
            encoder = self._encoders.get(ek)
            if encoder is None:
                encoder = self._encoders[ek] = RecordEncoder(vault.opts.actor, *ek[:3], list(ek[3]))
        self._records.append(
            _Pending(
                result,
                now,
                {
                    "record": record_id,
                    "class": item.record_class,
                    "sha256": digest,
                    "size": size,
                    "retain_until": until_text,
                    "rule": decision.rule,
                    "source_key": source_key,
                    "manifest": manifest_field,
                    "packs": all_packs,
                    "flags": sorted(item.flags),
                    "sealed": sealed,
                },
                encoder,
            )
        )
        self._by_content[(source_key, digest)] = result
        self._bytes += size

    def _archived(self, keys: list[str]) -> dict[tuple[str, str], AppendResult]:
        """Records in the catalog from these sources (by source key), oldest first."""
        found: dict[tuple[str, str], AppendResult] = {}
        db = self._reader()
        unique = sorted(set(keys))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            for key, sha, rid, serial, size, until, rule in db.execute(
                _DUP_SQL.format(",".join("?" * len(part))), part
            ):
                found.setdefault(
                    (key, sha),
                    AppendResult(rid, serial, sha, size, parse_time(until), rule, duplicate=True),
                )
        return found

    def _duplicate(
        self, source_key: str, digest: str, archived: dict[tuple[str, str], AppendResult]
    ) -> AppendResult | None:
        """The existing record with this source and content, if any (re-delivery): in
        this batch (acknowledged with it at commit), or already durable (acknowledged
        now)."""
        k = (source_key, digest)
        hit = self._by_content.get(k)
        if hit is not None:
            self._batch_dups.append(hit.record)
            return hit
        hit = self._prev_records.get(k) or archived.get(k)
        if hit is not None:
            res = AppendResult(
                hit.record,
                hit.serial,
                hit.sha256,
                hit.size,
                hit.retain_until,
                hit.rule,
                duplicate=True,
            )
            if self.on_ack:
                self.on_ack(res)
            return res
        return None

    def known(self, cid: bytes, size: int = CDC_MIN) -> BlobRef | None:
        """A chunk already stored: in this or the last batch, or (unless tiny) in the
        catalog."""
        ref = self._new_chunks.get(cid) or self._prev_chunks.get(cid)
        if ref is not None or size < DEDUP_MIN:
            # tiny chunks are deduplicated within a batch only: a catalog lookup per chat
            # message costs more than the few hundred bytes it could save
            return ref
        return self._lookup(cid)

    def _chunk_inline(self, data: bytes, bucket: str, until: datetime) -> tuple[BlobRef, bytes]:
        cid = self.vault.hasher.chunk_id(data)
        ref = self.known(cid, len(data))
        if ref is None:
            w = self.writer(bucket, len(data))
            w.note_retention(until)
            ref = w.add(cid, BlobKind.CHUNK, data)
            self._new_chunks[cid] = ref
            self.new_plain += len(data)
            self.new_stored += ref.length
            if self._closing:
                self.store_closed()
        return ref, cid

    def chunk_stream(
        self,
        head: bytes,
        stream: BinaryIO,
        bucket: str,
        until: datetime,
        sha: hashlib._Hash,
        chunks: list[tuple[BlobRef, bytes]],
        prefix: bytearray | None,
    ) -> int:
        """Chunk a large stream. The main thread only reads and cuts; keyed ids, dedup
        lookups, zstd and AES-GCM run in the pool, the whole-content SHA-256 in its own
        thread (in order), and full packs are written by the pack writer thread."""
        reader = Prepend(head, stream)
        queue: deque[tuple[int, PackWriter, Future[_Prepared], int]] = deque()
        size = 0
        slots: list[tuple[BlobRef, bytes] | None] = []
        digest = _OrderedHasher(sha)

        def drain(limit: int) -> None:
            while len(queue) > limit:
                slot, w, fut, plain_len = queue.popleft()
                cid, known, sealed = fut.result()
                slots[slot] = (self.adopt(w, cid, known, sealed, plain_len), cid)
                self.store_closed({id(q[1]) for q in queue})

        try:
            for c in self._cdc.cut_stream(reader):
                data = bytes(c.data)
                size += len(data)
                digest.update(data)
                if prefix is not None and len(prefix) <= MAX_TEXT:
                    prefix += data[: MAX_TEXT + 1 - len(prefix)]
                w = self.writer(bucket, len(data))
                w.note_retention(until)
                slots.append(None)
                fut = self.pool.submit(self.prepare, w, data)
                queue.append((len(slots) - 1, w, fut, len(data)))
                drain(IN_FLIGHT)
            drain(0)
        finally:
            digest.close()
        for s in slots:
            assert s is not None
            chunks.append(s)
        return size

    def adopt(
        self,
        w: PackWriter,
        cid: bytes,
        known: BlobRef | None,
        sealed: bytes | memoryview | None,
        n: int,
    ) -> BlobRef:
        """Where a prepared chunk lives: where it was found, where a twin prepared at the
        same time went, or — new — appended to ``w``."""
        ref = known or self._new_chunks.get(cid)
        if ref is None:
            assert sealed is not None
            ref = w.add_sealed(cid, BlobKind.CHUNK, sealed, n)
            self._new_chunks[cid] = ref
            self.new_plain += n
            self.new_stored += len(sealed)
        return ref

    def prepare(self, w: PackWriter, data: bytes) -> _Prepared:
        """Worker: keyed id, dedup lookup, then compress and seal only new content."""
        cid = self.vault.hasher.chunk_id(data)
        known = self.known(cid, len(data))
        if known is not None:
            return cid, known, None
        return cid, None, w.seal_blob(cid, encode_blob(data))

    def _reader(self) -> sqlite3.Connection:
        """The calling thread's own read-only catalog connection (the workers look up
        chunks too). WAL lets readers run beside the writer, and they do not wait for
        its background commit: what that adds is still in ``_prev_*``."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            path = self.vault.catalog.path
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = db
            self._readers.append(db)
        return db

    def _lookup(self, cid: bytes) -> BlobRef | None:
        row = self._reader().execute(CHUNK_SQL, (cid,)).fetchone()
        return None if row is None else BlobRef(str(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def store_closed(self, busy: set[int] | None = None) -> None:
        """Store closed packs that have received all their in-flight blobs."""
        keep = []
        for w in self._closing:
            if (busy and id(w) in busy) or self.reserved.get(id(w)):
                keep.append(w)
            else:
                self._store_pack(w)
        self._closing = keep

    # --- commit -------------------------------------------------------------------------

    def commit(self) -> list[AppendResult]:
        """Store open packs, extend reused packs, write entries; acknowledge the batch."""
        vault = self.vault
        self._add_small()
        if not self._records and not self._flushed and not self._writers and not self._closing:
            return []
        for w in [*self._closing, *self._writers.values()]:
            if w.count:
                self._store_pack(w)
        self._closing.clear()
        self._writers.clear()
        # entries carry the time each record was received (its retention started then);
        # the objects they depend on are stamped with the batch's first time
        first = self._records[0].at if self._records else None
        for pack, until in sorted(self._extend.items()):
            vault.store.extend_retention(pack, until)
            vault.append_entry(
                EntryType.OBJECT_EXTEND,
                {"object": pack, "retain_until": format_time(until)},
                stamp=first,
            )
        puts = [f.result() for f in self._flushed]  # durable before anything refers to them
        for put in puts:
            vault.append_entry(EntryType.OBJECT_PUT, put, stamp=first)
        results = []
        for p in self._records:
            # fields built in _add from known types: ids, hex, ints, times, labels
            serial = vault.append_entry(
                EntryType.RECORD_APPEND, p.fields, stamp=p.at, checked=False, encoder=p.encoder
            )
            r = p.result
            results.append(AppendResult(r.record, serial, r.sha256, r.size, r.retain_until, r.rule))
        vault.commit(background=True)
        by_id = {r.record: r for r in results}
        dups = [by_id[rid] for rid in self._batch_dups]
        records = {
            (str(p.fields["source_key"]), r.sha256): r
            for p, r in zip(self._records, results, strict=True)
        }
        retained = {**self._stored_until, **self._extend}
        last_records, last_chunks, last_until = self._last
        self._prev_records = {**last_records, **records}
        self._prev_chunks = {**last_chunks, **self._new_chunks}
        self._prev_until = {**last_until, **retained}  # retention only grows
        self._last = (records, self._new_chunks, retained)
        if vault.indexer.newly_held:
            held = sorted({rid for _, rid in vault.indexer.newly_held})
            vault.indexer.newly_held.clear()
            hold_packs_of(vault, held)
            vault.commit()
        self._reset()
        if self.on_ack:
            for r in results:
                self.on_ack(r)
            for r in dups:
                self.on_ack(
                    AppendResult(
                        r.record, r.serial, r.sha256, r.size, r.retain_until, r.rule, duplicate=True
                    )
                )
        return results


_Prepared = tuple[bytes, "BlobRef | None", "bytes | None"]  # (chunk id, known ref, sealed)
_Decided = tuple["Decision", str, str]  # (decision, pack bucket, retain-until as text)


class _OrderedHasher:
    """SHA-256 of a stream fed chunk by chunk, computed in its own thread (hashlib
    releases the GIL), in order, with a bounded queue."""

    def __init__(self, sha: hashlib._Hash) -> None:
        self._sha = sha
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=IN_FLIGHT * 2)
        self._t = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (b := self._q.get()) is not None:
            self._sha.update(b)

    def update(self, data: bytes) -> None:
        self._q.put(data)

    def close(self) -> None:
        self._q.put(None)
        self._t.join()


class Prepend(io.RawIOBase):
    """A reader that yields ``head`` and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._head.nbytes:
            n = min(len(b), self._head.nbytes)
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        got = self._stream.readinto(b)  # type: ignore[attr-defined]
        return int(got or 0)
