"""The indexer process: a batch's catalog rows written by a process of its own.

During a long ingest the catalog's share of the work — extracting each record's text,
building its rows, and SQLite's inserts into the records table, its indexes and the
full-text index — is as large as everything else together. In a helper thread it had
to share the GIL with the ingest thread (and hand SQLite its rows as one JSON array per
table, which costs CPU of its own); in this process it runs on the second core beside
the ingest thread, and inserts with ``executemany`` (ADR 0011).

What it is sent, per commit, while the ledger writes the entries: the entries as the
in-process indexer gets them (type, time, actor, fields), and what the live
:class:`Loader` holds for them (record details, the content prefix, pack indexes,
manifests); it commits only when told the ledger is durable. It needs no keys and
never reads the store: a batch that would need either is indexed in process as before
(:meth:`Vault.commit` decides). It applies the entries with the same
:class:`Indexer` that ``reindex`` uses, in one transaction, and checks first that the
catalog has indexed exactly the entries before them, so a batch can never be applied
twice or out of order.

It is started as a fresh interpreter (not forked: SQLite connections must not cross a
``fork``), with the vault's writer-lock descriptor, so the lock is held as long as it
runs; it stops at end of input, which is also what it sees when its parent dies. The
protocol is ``marshal`` over a pipe: both ends are the same interpreter, and marshal
carries exactly the plain values a batch is made of.
"""

from __future__ import annotations

import functools
import gc
import marshal
import os
import signal
import subprocess
import sys
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import strongroom
from strongroom import errors
from strongroom.catalog import DEDUP_MIN, Catalog
from strongroom.core.entries import Entry, EntryType
from strongroom.core.retention import format_time, parse_time
from strongroom.errors import CorruptVault, StorageError, StrongroomError
from strongroom.vault.indexer import KEEP_QUEUED, Indexer, Loader, Manifest, write_rows
from strongroom.vault.packs import BlobKind, IndexRow

# (first serial, entries as (type, time, actor, fields), details by record, content
#  prefix by record, pack index rows by pack, manifests by record)
Batch = tuple[
    int,
    list[tuple[str, str, str, dict[str, Any]]],
    dict[str, dict[str, Any]],
    dict[str, bytes],
    dict[str, list[tuple[bytes, int, int, int, int]]],
    dict[str, Manifest],
]


class IndexerGone(StorageError):
    """The indexer process has ended, or a batch cannot be passed to it."""


class _BatchLoader(Loader):
    """What the parent's live loader held for this batch; nothing else can be read."""

    def __init__(self, batch: Batch) -> None:  # no vault: no keys, no store
        _, _, details, content, indexes, manifests = batch
        self.live_details = details
        self.live_content = content
        self.live_manifests = manifests
        self.live_indexes = {
            name: [IndexRow(b, BlobKind(k), o, n, p) for b, k, o, n, p in rows]
            for name, rows in indexes.items()
        }

    @staticmethod
    def _missing(what: str) -> CorruptVault:
        return CorruptVault(f"the indexer process was not sent {what}")

    def details(self, key: str, sealed: str) -> dict[str, Any]:
        hit = self.live_details.get(key)
        if hit is None:
            raise self._missing(f"the details of {key}")
        return hit

    def pack_index(self, name: str) -> list[IndexRow]:
        rows = self.live_indexes.get(name)
        if rows is None:
            raise self._missing(f"the index of pack {name}")
        return rows

    def blob(self, pack: str, blob_id: bytes, offset: int, length: int, plain_len: int) -> bytes:
        raise self._missing(f"a blob of pack {pack}")


def stage_batch(catalog: Catalog, batch: Batch) -> Indexer:
    """Index one batch inside a transaction, left open for the verdict."""
    start, entries = batch[0], batch[1]
    indexed = catalog.indexed
    if indexed != start:
        raise CorruptVault(
            f"the indexer process was sent entries from serial {start}, but the catalog "
            f"has indexed {indexed}"
        )
    indexer = Indexer(catalog, _BatchLoader(batch))
    if catalog.has_query_holds():
        # the records such a hold catches must have their packs held before the commit
        # returns, so the parent indexes those batches itself (Vault._batch_for_indexer)
        raise CorruptVault("the indexer process was sent a batch while a query hold is active")
    when = functools.lru_cache(maxsize=64)(parse_time)  # entries of a group share times
    rows = indexer.stage(
        (start + i, Entry(_TYPES[t], when(time), actor, fields))
        for i, (t, time, actor, fields) in enumerate(entries)
    )
    try:
        write_rows(catalog.db, rows, bulk_json=False)
    except BaseException:
        indexer.cancel()
        raise
    return indexer


_NAMES = {t: t.value for t in EntryType}  # marshal takes plain str only
_TYPES = {t.value: t for t in EntryType}
# entries the indexer applies without the loader (most change no table at all)
_NO_LOADER = KEEP_QUEUED - {EntryType.RECORD_APPEND, EntryType.OBJECT_PUT}


def batch_of(start: int, pending: list[Entry], loader: Loader) -> Batch | None:
    """The batch to send for these entries, or None when one of them needs more than the
    live loader holds (or keys, or the store)."""
    record, put = EntryType.RECORD_APPEND, EntryType.OBJECT_PUT
    details, content, manifests = loader.live_details, loader.live_content, loader.live_manifests
    indexes: dict[str, list[tuple[bytes, int, int, int, int]]] = {}
    entries: list[tuple[str, str, str, dict[str, Any]]] = []
    last: tuple[datetime | None, str] = (None, "")
    for e in pending:
        t, f = e.type, e.fields
        if t is record:
            rid = f["record"]
            if rid not in details or rid not in content:
                return None
            if "chunks" not in f["manifest"] and rid not in manifests:
                return None
        elif t is put:
            name = f["object"]
            index = loader.live_indexes.get(name)
            if index is None:
                return None
            indexes[name] = [  # the only rows the indexer keeps (Indexer._object_put)
                (r.blob_id, int(r.kind), r.offset, r.length, r.plain_len)
                for r in index
                if r.kind == BlobKind.CHUNK and r.plain_len >= DEDUP_MIN
            ]
        elif t not in _NO_LOADER:
            return None
        if e.time != last[0]:  # entries of a group share their time
            last = (e.time, format_time(e.time))
        entries.append((_NAMES[t], last[1], e.actor, f if type(f) is dict else dict(f)))
    # the loader's own dicts: the batch is marshalled (IndexerProcess.begin) before the
    # commit ends and the loader forgets them
    return start, entries, details, content, indexes, manifests


class _Reply:
    """The indexer process's answer to batch ``n`` and every one before it (a
    :class:`~strongroom.catalog.Pending`)."""

    def __init__(self, proc: IndexerProcess, n: int) -> None:
        self._proc = proc
        self._n = n

    def result(self) -> None:
        self._proc.wait_for(self._n)


SLOTS = 2  # batches in flight: one being indexed, the next one already sent
# marshal format 2 writes shared objects again instead of remembering them (format 3+):
# a batch shares many strings, and the bookkeeping cost more than the bytes it saved
_MARSHAL = 2


class IndexerProcess:
    """The parent's handle: :meth:`begin` a batch, :meth:`finish` it once the ledger has
    decided, and the catalog waits for the reply (up to :data:`SLOTS` batches ahead)."""

    def __init__(self, catalog: Path, lock_fd: int) -> None:
        # batches go through shared memory (one copy each way), one region per slot; the
        # pipes carry only slot and size, the verdicts and the replies: writing ~10 MB
        # per batch through a 64 KiB pipe cost the ingest thread more than building it
        self._mems = [os.memfd_create("strongroom-batch", os.MFD_CLOEXEC) for _ in range(SLOTS)]
        self._mem_sizes = [0] * SLOTS
        self._sent = 0  # batches begun
        self._answered = 0  # replies received
        to_child, self._tx_fd = os.pipe()
        self._rx_fd, from_child = os.pipe()
        env = dict(os.environ)
        # the child imports this very copy of strongroom, however the parent found it
        root = str(Path(strongroom.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(  # noqa: S603 (this interpreter, fixed argv)
                [sys.executable, "-m", __name__, str(catalog)]
                + [str(fd) for fd in (to_child, from_child, *self._mems)],
                pass_fds=(to_child, from_child, *self._mems, lock_fd),
                # it reports through the pipe; should it die anyway, nothing of it
                # reaches the user's terminal, and the vault catches up without it
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            for fd in (self._tx_fd, self._rx_fd, *self._mems):
                os.close(fd)
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        self._tx = Connection(self._tx_fd, readable=False)
        self._rx = Connection(self._rx_fd, writable=False)
        self.alive = True

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def busy(self) -> bool:
        """Whether a batch it was sent is not answered yet."""
        return self._answered < self._sent

    def make_room(self) -> None:
        """Wait for the reply to the batch that last used the next batch's slot; an
        earlier batch's failure is raised here (and the process is no longer used)."""
        self.wait_for(self._sent - SLOTS + 1)

    def begin(self, batch: Batch) -> None:
        """Send a batch (after :meth:`make_room`): the process indexes it in a
        transaction, and waits for :meth:`finish` to say whether the ledger made the
        entries durable. :class:`IndexerGone` if it cannot be sent."""
        assert self._sent - self._answered < SLOTS
        slot = self._sent % SLOTS
        data = marshal.dumps(batch, _MARSHAL)
        try:
            mem = self._mems[slot]
            if len(data) > self._mem_sizes[slot]:
                os.ftruncate(mem, len(data) + (len(data) >> 2))
                self._mem_sizes[slot] = len(data) + (len(data) >> 2)
            view, done = memoryview(data), 0
            while done < len(data):
                done += os.pwrite(mem, view[done:], done)
        except OSError as e:
            self.alive = False  # it waits for a batch that will not come: stopped at close
            raise IndexerGone(f"cannot pass a batch to the indexer process: {e}") from e
        self._send(bytes([slot]) + len(data).to_bytes(8, "little"))
        self._sent += 1

    def finish(self, durable: bool) -> _Reply:
        """COMMIT the batch (the ledger holds it) or roll it back; the reply follows."""
        self._send(b"commit" if durable else b"rollback")
        return _Reply(self, self._sent)

    def _send(self, data: bytes) -> None:
        try:
            self._tx.send_bytes(data)
        except OSError as e:
            raise self._ended(e) from e

    def wait_for(self, n: int) -> None:
        """Receive replies until batch ``n`` (counted from 1) is answered. A failed batch
        (rolled back by the process) ends its use: the later ones, which depend on it,
        are waited for too, and the first error is raised; from then on the vault
        indexes in process, catching up from the ledger."""
        error: StrongroomError | None = None
        while self._answered < n:
            try:
                reply = marshal.loads(self._rx.recv_bytes())  # noqa: S302 (our own pipe)
            except (EOFError, OSError) as e:
                raise error or self._ended(e) from e
            self._answered += 1
            if reply[0] != "ok" and error is None:
                _, kind, message, remedy = reply
                cls = getattr(errors, kind, StorageError)
                if not (isinstance(cls, type) and issubclass(cls, StrongroomError)):
                    cls = StorageError
                error = cls(message, remedy)
                self.alive = False
                n = self._sent
        if error is not None:
            raise error

    def _ended(self, e: BaseException) -> IndexerGone:
        self.alive = False
        self._answered = self._sent  # no reply will come: nothing more to wait for
        code = self._proc.wait()
        return IndexerGone(
            f"the catalog's indexer process ended unexpectedly (exit status {code}: {e}); "
            "every acknowledged record is in the ledger, and the catalog catches up from it"
        )

    def close(self) -> None:
        """Stop the process (it finishes a batch it was sent first) and wait for it."""
        self.alive = False
        for c in (self._tx, self._rx):
            c.close()  # end of input: the child's loop ends
        for fd in self._mems:
            os.close(fd)
        self._proc.wait()


def _read_all(fd: int, size: int) -> bytes:
    parts, done = [], 0
    while done < size:
        part = os.pread(fd, size - done, done)
        if not part:
            raise StorageError(f"the batch in shared memory is short: {done} of {size} bytes")
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _serve(catalog_path: str, rx: Connection, tx: Connection, mems: list[int]) -> None:
    """Batches in, one reply per batch out, until the input ends (a batch whose verdict
    never comes is rolled back)."""
    catalog: Catalog | None = None
    failure: StrongroomError | None = None
    try:
        catalog = Catalog(Path(catalog_path))
        # a batch touches more pages than the default 2 MiB cache holds; this process
        # does nothing else, so give it room (about 10% fewer CPU-seconds per batch)
        catalog.db.execute("PRAGMA cache_size = -65536")
        # and move the WAL's pages into the database every 40 MiB instead of every
        # 4 MiB (after each batch): a page that later batches change again is copied
        # once, not each time (about 20% fewer CPU-seconds)
        catalog.db.execute("PRAGMA wal_autocheckpoint = 10000")
    except StrongroomError as e:
        failure = e
    while True:
        try:
            header = rx.recv_bytes()
            slot, size = header[0], int.from_bytes(header[1:], "little")
            indexer = error = None
            try:
                if failure is not None:
                    raise failure
                assert catalog is not None
                data = _read_all(mems[slot], size)
                indexer = stage_batch(catalog, marshal.loads(data))  # noqa: S302 (our memfd)
            except StrongroomError as e:
                error = e
            except Exception as e:  # reported to the parent, never printed
                error = StorageError(f"indexer process: {type(e).__name__}: {e}")
            verdict = rx.recv_bytes()
        except (EOFError, OSError):
            break
        reply: tuple[Any, ...]
        if error is not None:
            reply = ("error", type(error).__name__, error.message, error.remedy)
        elif verdict != b"commit":
            assert indexer is not None
            indexer.cancel()
            reply = ("ok",)
        else:
            assert catalog is not None and indexer is not None
            try:
                catalog.commit(lambda db: None, background=False)
                reply = ("ok",)
            except StrongroomError as e:
                reply = ("error", type(e).__name__, e.message, e.remedy)
        try:
            tx.send_bytes(marshal.dumps(reply))
        except OSError:
            break
        indexer = None
        gc.collect()  # what little the batch left in cycles (an exception's traceback)
    if catalog is not None:
        catalog.close()  # an open transaction is rolled back


def main(argv: list[str]) -> None:
    # Ctrl-C reaches the whole process group: the parent decides what stops, and this
    # process stops when its input ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a batch's objects are freed by reference count when it is done; the cyclic GC
    # would walk them again and again while it is being built (see _serve)
    gc.freeze()
    gc.disable()
    path, rx_fd, tx_fd, *mem_fds = argv
    rx, tx = Connection(int(rx_fd), writable=False), Connection(int(tx_fd), readable=False)
    _serve(path, rx, tx, [int(fd) for fd in mem_fds])


if __name__ == "__main__":
    main(sys.argv[1:])
